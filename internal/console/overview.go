package console

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/processor"
)

// overviewWindow is the time the overview adds up.
const overviewWindow = 24 * time.Hour

// bar is one bar of a chart, sized on the server.
type bar struct {
	Label string
	Value int
	// Width is the bar's length in the chart's units (0 to chartWidth).
	Width int
	// Y is the bar's top in the chart's units.
	Y     int
	Class string
}

// chart is a horizontal bar chart drawn as SVG by the template.
type chart struct {
	Bars   []bar
	Height int
}

// Chart geometry, in SVG user units.
const (
	chartWidth = 320
	barHeight  = 22
	barGap     = 6
)

// newChart lays out bars for labelled values, in the given order.
func newChart(labels []string, values map[string]int, class func(string) string) chart {
	max := 0
	for _, l := range labels {
		max = maxInt(max, values[l])
	}
	c := chart{}
	for i, l := range labels {
		w := 0
		if max > 0 {
			w = values[l] * chartWidth / max
		}
		if values[l] > 0 && w < 2 {
			w = 2
		}
		c.Bars = append(c.Bars, bar{Label: l, Value: values[l], Width: w, Y: i * (barHeight + barGap), Class: class(l)})
	}
	c.Height = len(labels) * (barHeight + barGap)
	return c
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// overviewPage is an app's last 24 hours.
type overviewPage struct {
	base
	Since    time.Time
	Sends    chart
	Events   chart
	Total    int
	Granted  int
	Used     int
	Settled  int
	Rate     string
	Waiting  int
	Unknown  int
	Callback int
}

// sentToWeChat are the statuses of messages that WeChat took (or may have
// taken): each used a grant.
var sentToWeChat = []string{processor.StatusSent, processor.StatusDelivered, processor.StatusFailed, processor.StatusUnknown}

// overview answers GET /console/apps/{appid}.
func (c *Console) overview(ctx *gin.Context) error {
	appID := ctx.Param("appid")
	since := c.now().Add(-overviewWindow)
	counts, err := c.stats.Counts(ctx.Request.Context(), appID, since)
	if err != nil {
		return err
	}
	p := &overviewPage{base: c.common(ctx, "Overview", "overview", appID), Since: since, Waiting: counts.DeadLetters}
	p.Sends = newChart(statuses, counts.Messages, funcs["statusClass"].(func(string) string))
	for _, n := range counts.Messages {
		p.Total += n
	}
	for _, s := range sentToWeChat {
		p.Used += counts.Messages[s]
	}
	p.Unknown = counts.Messages[processor.StatusUnknown]
	delivered, failed := counts.Messages[processor.StatusDelivered], counts.Messages[processor.StatusFailed]
	p.Settled = delivered + failed
	if p.Settled > 0 {
		p.Rate = formatPercent(delivered, p.Settled)
	}
	kinds := make([]string, 0, len(counts.Events))
	for k, n := range counts.Events {
		kinds = append(kinds, k)
		p.Callback += n
		if strings.HasSuffix(k, " accept") {
			p.Granted += n
		}
	}
	sort.Strings(kinds)
	p.Events = newChart(kinds, counts.Events, func(k string) string {
		parts := strings.Fields(k)
		return funcs["statusClass"].(func(string) string)(parts[len(parts)-1])
	})
	c.render(ctx, 200, "overview", p)
	return nil
}

// formatPercent formats n/d as a percentage with one decimal.
func formatPercent(n, d int) string {
	return fmt.Sprintf("%.1f%%", float64(n)*100/float64(d))
}
