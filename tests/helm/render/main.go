// Renders a Helm chart with text/template and sprig, providing the Helm built-ins the
// xks-proxy chart uses (include, tpl, toYaml, required; .Values, .Release, .Chart, .Files.Get,
// .Capabilities.APIVersions.Has). Helm itself is not packaged on Debian 12; this renderer
// exists only so that the tests can check what the chart produces.
//
// Usage: render CHART_DIR RELEASE NAMESPACE [VALUES_FILE...]
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

func readYAML(path string) map[string]interface{} {
	data, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		fail(fmt.Errorf("%s: %v", path, err))
	}
	return out
}

// merge copies override into base, recursing into maps (Helm's values coalescing).
func merge(base, override map[string]interface{}) map[string]interface{} {
	for key, value := range override {
		if nested, ok := value.(map[string]interface{}); ok {
			if existing, ok := base[key].(map[string]interface{}); ok {
				base[key] = merge(existing, nested)
				continue
			}
		}
		base[key] = value
	}
	return base
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "render:", err)
	os.Exit(1)
}

type apiVersions []string

func (a apiVersions) Has(version string) bool {
	for _, v := range a {
		if v == version {
			return true
		}
	}
	return false
}

// chartFiles is .Files: Get reads a file of the chart (symbolic links followed, as Helm does),
// and gives "" for one that does not exist.
type chartFiles string

func (dir chartFiles) Get(name string) string {
	data, err := os.ReadFile(filepath.Join(string(dir), name))
	if err != nil {
		return ""
	}
	return string(data)
}

func main() {
	if len(os.Args) < 4 {
		fail(fmt.Errorf("usage: render CHART_DIR RELEASE NAMESPACE [VALUES_FILE...]"))
	}
	chartDir, release, namespace := os.Args[1], os.Args[2], os.Args[3]
	chart := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	values := readYAML(filepath.Join(chartDir, "values.yaml"))
	for _, file := range os.Args[4:] {
		values = merge(values, readYAML(file))
	}
	data := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true,
		},
		"Chart": map[string]interface{}{
			"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"],
		},
		"Files": chartFiles(chartDir),
		"Capabilities": map[string]interface{}{
			"APIVersions": apiVersions{"v1", "apps/v1", "policy/v1", "autoscaling/v2",
				"networking.k8s.io/v1"},
		},
	}

	root := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	funcs["include"] = func(name string, context interface{}) (string, error) {
		var out bytes.Buffer
		err := root.ExecuteTemplate(&out, name, context)
		return out.String(), err
	}
	funcs["tpl"] = func(text string, context interface{}) (string, error) {
		t, err := root.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var out bytes.Buffer
		err = t.Execute(&out, context)
		return out.String(), err
	}
	funcs["toYaml"] = func(value interface{}) string {
		out, err := yaml.Marshal(value)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(out), "\n")
	}
	funcs["required"] = func(message string, value interface{}) (interface{}, error) {
		if value == nil || value == "" {
			return nil, fmt.Errorf("%s", message)
		}
		return value, nil
	}
	root.Funcs(funcs)

	files, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(files)
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			fail(err)
		}
		if _, err := root.New(filepath.Base(file)).Parse(string(text)); err != nil {
			fail(err)
		}
	}
	for _, file := range files {
		name := filepath.Base(file)
		if strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".yaml") {
			continue
		}
		var out bytes.Buffer
		if err := root.ExecuteTemplate(&out, name, data); err != nil {
			fail(err)
		}
		rendered := strings.ReplaceAll(out.String(), "<no value>", "")
		if strings.TrimSpace(rendered) == "" {
			continue
		}
		fmt.Printf("---\n# Source: %s/templates/%s\n%s\n", chart["name"], name, strings.TrimSpace(rendered))
	}
}
