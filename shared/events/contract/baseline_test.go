package contract_test

import (
	"slices"
	"strings"
	"testing"

	"example.com/platform/shared/events/contract"
)

// TestCompareBaseline: a schema edited by hand together with its Go type
// still fails against the baseline commit, a removed version fails, and a
// new version or a compatible change passes.
func TestCompareBaseline(t *testing.T) {
	const (
		v1   = testType + ".json"
		gone = "com.example.test.thing.gone.v1.json"
		v2   = "com.example.test.thing.created.v2.json"
	)
	base := map[string][]byte{
		v1:              []byte(`{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}}`),
		gone:            []byte(`{"type":"object"}`),
		"asyncapi.yaml": []byte("asyncapi: 3.0.0\n"),
	}
	head := map[string][]byte{
		v1:              []byte(`{"type":"object","required":["id"],"properties":{"id":{"type":"integer"}}}`),
		v2:              []byte(`{"type":"object"}`),
		"asyncapi.yaml": []byte("asyncapi: 3.0.0\nchanged: true\n"),
	}
	changes, err := contract.CompareBaseline(base, head)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range contract.Breaking(changes) {
		got = append(got, c.String())
	}
	want := []string{
		"com.example.test.thing.created.v1: field id: type changed from string to integer: publish it as com.example.test.thing.created.v2",
		"com.example.test.thing.gone.v1: payload: published version removed: keep it registered beside its successor until no consumer needs it",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("breaking:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	head[v1] = []byte(`{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"note":{"type":"string"}}}`)
	head[gone] = base[gone]
	changes, err = contract.CompareBaseline(base, head)
	if err != nil || len(contract.Breaking(changes)) != 0 || len(changes) != 1 || changes[0].Field != "note" {
		t.Fatalf("compatible changes = %v, %v", changes, err)
	}
}
