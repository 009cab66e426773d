// Command check validates wxgate's deployment files offline, with no cluster
// and no network: every Kubernetes object that kustomize renders from
// deployments/kubernetes is decoded strictly into the API types of the
// Kubernetes version the manifests need (a field unknown to that version, a
// misspelt one or one of the wrong type is an error), and deployments/compose.yaml
// is loaded and validated against the Compose specification's schema by
// compose-go. It is its own module so that wxgate's go.mod does not carry the
// Kubernetes and Compose libraries.
//
//	kustomize build deployments/kubernetes | go run ./deployments/check -compose deployments/compose.yaml
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	compose := flag.String("compose", "", "a Compose `file` to validate")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: kustomize build DIR | check [-compose FILE]\n\nDecodes each Kubernetes object on stdin strictly into the API types of Kubernetes %s and validates the Compose file.\n\n", kubernetesVersion)
		flag.PrintDefaults()
	}
	flag.Parse()
	n, err := checkKubernetes(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		os.Exit(1)
	}
	fmt.Printf("kubernetes: %d objects valid for Kubernetes %s\n", n, kubernetesVersion)
	if *compose != "" {
		services, err := checkCompose(*compose)
		if err != nil {
			fmt.Fprintln(os.Stderr, "check:", err)
			os.Exit(1)
		}
		fmt.Printf("compose: %s valid, %d services\n", *compose, services)
	}
}

// kubernetesVersion is the oldest Kubernetes the manifests run on, and the
// version of the k8s.io/api module in go.mod (v0.30.x is Kubernetes 1.30):
// the preStop sleep action the Deployments use is on by default from 1.30.
const kubernetesVersion = "1.30"

// scheme knows the kinds deployments/kubernetes renders; any other kind is
// an error, so that a new kind gets a schema here before it ships.
func scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkKubernetes decodes every YAML document of r and returns how many
// objects it held.
func checkKubernetes(r io.Reader) (int, error) {
	s, err := scheme()
	if err != nil {
		return 0, err
	}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(r))
	n := 0
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("reading the objects: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := checkObject(s, doc); err != nil {
			return n, fmt.Errorf("object %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return 0, errors.New("no Kubernetes objects on stdin")
	}
	return n, nil
}

// checkObject decodes one object into its kind's Go type, refusing fields
// the type does not have and duplicate keys.
func checkObject(s *runtime.Scheme, doc []byte) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &meta); err != nil {
		return err
	}
	gv, err := schema.ParseGroupVersion(meta.APIVersion)
	if err != nil {
		return err
	}
	obj, err := s.New(gv.WithKind(meta.Kind))
	if err != nil {
		return fmt.Errorf("%s %s: not a kind of Kubernetes %s known here: %w", meta.APIVersion, meta.Kind, kubernetesVersion, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return fmt.Errorf("%s %s: %w", meta.Kind, meta.Metadata.Name, err)
	}
	if meta.Metadata.Name == "" {
		return fmt.Errorf("%s without metadata.name", meta.Kind)
	}
	return nil
}

// checkCompose loads a Compose file as `docker compose config` would, with
// the schema validation and consistency checks, but without reading the
// env_files gen-secrets.sh writes or the variables of this machine.
func checkCompose(path string) (int, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	content, err := os.ReadFile(abs)
	if err != nil {
		return 0, err
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: content}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("wxgate", true)
		o.SkipResolveEnvironment = true
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return len(p.Services), nil
}
