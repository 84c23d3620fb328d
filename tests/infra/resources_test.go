package infra_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	tfjson "github.com/hashicorp/terraform-json"
)

// resource is one resource instance with its (known) attribute values, from
// a plan or a state.
type resource struct {
	Address string
	Type    string
	Values  map[string]any
}

func (r resource) str(path ...any) string {
	s, _ := get(r.Values, path...).(string)
	return s
}

// get follows keys (string) and list indexes (int) through decoded JSON.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func planResources(p *terraform.PlanStruct) []resource {
	out := make([]resource, 0, len(p.ResourcePlannedValuesMap))
	for addr, r := range p.ResourcePlannedValuesMap {
		if r.Mode != tfjson.ManagedResourceMode {
			continue
		}
		out = append(out, resource{Address: addr, Type: r.Type, Values: r.AttributeValues})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

func stateResources(s *tfjson.State) []resource {
	var out []resource
	var walk func(m *tfjson.StateModule)
	walk = func(m *tfjson.StateModule) {
		if m == nil {
			return
		}
		for _, r := range m.Resources {
			if r.Mode == tfjson.ManagedResourceMode {
				out = append(out, resource{Address: r.Address, Type: r.Type, Values: r.AttributeValues})
			}
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	if s.Values != nil {
		walk(s.Values.RootModule)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// showState reads the state of an applied configuration.
func showState(t *testing.T, opts *terraform.Options) []resource {
	t.Helper()
	o := *opts
	o.PlanFilePath = ""
	out, err := terraform.RunTerraformCommandAndGetStdoutE(t, &o, "show", "-json")
	if err != nil {
		t.Fatalf("show state: %v", err)
	}
	var s tfjson.State
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("decode state: %v", err)
	}
	return stateResources(&s)
}

func ofType(rs []resource, types ...string) []resource {
	var out []resource
	for _, r := range rs {
		for _, t := range types {
			if r.Type == t {
				out = append(out, r)
			}
		}
	}
	return out
}

// last is the final path segment of an id ("projects/p/topics/x" -> "x").
func last(s string) string { return s[strings.LastIndex(s, "/")+1:] }

func countByType(rs []resource) string {
	n := map[string]int{}
	for _, r := range rs {
		n[r.Type]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n[k]))
	}
	return strings.Join(parts, " ")
}
