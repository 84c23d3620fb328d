package contract

import (
	"maps"
	"path"
	"slices"
	"strings"
)

// CompareBaseline applies the gate to two sets of committed schemas: base
// (the schemas at an earlier commit, such as the merge base of a change)
// and head (the schemas now), each keyed by file name (<type>.json). It
// catches what the regenerating check cannot: a committed schema of a
// published version edited together with its Go type. A schema of base
// that head no longer has is breaking too (consumers of the version lose
// their contract); files that are not schemas (no .json suffix) are
// ignored. The result holds breaking and compatible changes, sorted by
// type and field.
func CompareBaseline(base, head map[string][]byte) ([]Change, error) {
	var out []Change
	for _, name := range slices.Sorted(maps.Keys(base)) {
		if path.Ext(name) != ".json" {
			continue
		}
		typ := strings.TrimSuffix(path.Base(name), ".json")
		now, ok := head[name]
		if !ok {
			out = append(out, Change{Type: typ, Problem: "published version removed", Breaking: true,
				Fix: "keep it registered beside its successor until no consumer needs it"})
			continue
		}
		changes, err := Compare(typ, base[name], now)
		if err != nil {
			return nil, err
		}
		out = append(out, changes...)
	}
	return out, nil
}
