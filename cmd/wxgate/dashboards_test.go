package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
)

// deployments is the directory of the Grafana dashboards and Prometheus rules.
const deployments = "../../deployments"

// metricName finds the names of wxgate's metrics in a query.
var metricName = regexp.MustCompile(`wxgate_[a-z_]+`)

// exportedMetrics runs a real node and returns the names of the metrics its
// /metrics serves: every collector the node registers, a histogram by its own
// name and by its _bucket, _sum and _count. It waits until the processor's consumer exists,
// so that the consumer metrics read from JetStream are there too.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	n := startNode(t, sim.ModeSecure, sim.FormatJSON)
	var names map[string]bool
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		resp, err := http.Get(n.base + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		names = map[string]bool{}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if family, ok := strings.CutPrefix(line, "# TYPE "); ok {
				// A histogram's own name, as documentation uses it.
				name, _, _ := strings.Cut(family, " ")
				names[name] = true
				continue
			}
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, _, _ := strings.Cut(line, "{")
			name, _, _ = strings.Cut(name, " ")
			names[name] = true
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if !names["wxgate_consumer_pending_messages"] {
			return fmt.Errorf("no consumer metrics yet")
		}
		return nil
	})
	return names
}

// dashboardQueries returns the PromQL of a Grafana dashboard: every target's
// expr and every variable's query. It fails the test if the file is not a
// well-formed dashboard.
func dashboardQueries(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s is not well-formed JSON: %v", path, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Errorf("%s: title %q, uid %q, %d panels; want all three", path, d.Title, d.UID, len(d.Panels))
	}
	var queries []string
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d used twice", path, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: panel %q queries data source %q, want the dashboard's ${datasource}", path, p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", path, p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("%s: panel %q has an empty query", path, p.Title)
			}
			queries = append(queries, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			queries = append(queries, v.Definition)
		}
	}
	return queries
}

// TestDeploymentsQueryExportedMetrics holds the Grafana dashboards and the
// Prometheus rules (and their unit tests) to the metrics a real node exports:
// a renamed metric must be renamed there too.
func TestDeploymentsQueryExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	var files []string
	for _, pattern := range []string{"grafana/*.json", "prometheus/*.yaml"} {
		m, err := filepath.Glob(filepath.Join(deployments, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if !slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, ".json") }) {
		t.Fatalf("no dashboard in %s/grafana", deployments)
	}
	used := map[string][]string{} // metric name -> files
	for _, f := range files {
		var text []string
		if strings.HasSuffix(f, ".json") {
			text = dashboardQueries(t, f)
		} else {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			text = []string{string(b)}
		}
		for _, s := range text {
			for _, name := range metricName.FindAllString(s, -1) {
				if !slices.Contains(used[name], f) {
					used[name] = append(used[name], f)
				}
			}
		}
	}
	if len(used) == 0 {
		t.Fatal("the deployments query no wxgate metric")
	}

	exported := exportedMetrics(t)
	var names []string
	for name := range used {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !exported[name] {
			t.Errorf("%s, queried in %v, is not a metric wxgate exports", name, used[name])
		}
	}
}
