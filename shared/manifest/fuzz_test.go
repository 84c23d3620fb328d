package manifest_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"example.com/platform/shared/manifest"
)

// FuzzParse feeds arbitrary YAML to the manifest parser and validator.
// Properties: no panic; every error wraps ErrInvalid and says something;
// a manifest that parses validates without panicking (problems wrap
// ErrInvalid), and encoding it again and parsing that gives the same
// manifest (marshal, parse, marshal is stable).
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodManifest))
	if paths, _ := filepath.Glob("../../functions/*/function.yaml"); len(paths) > 0 {
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	for _, s := range []string{
		"", "---\n---\n", "name: [", "name: x\nunknown: 1\n", "consumes: {}\n", "resources:\n  concurrency: 1e99\n",
		"a: &a [*a, *a]\n", "env:\n  A: !!binary aGVsbG8=\n", "consumes:\n  - topic: order.created\n    max_delivery_attempts: -1\n",
		"consumes_dead_letters: {min_backoff: 99999999999999999999s}\n", "\xff\xfe", "name: payment\n...\nname: x\n",
	} {
		f.Add([]byte(s))
	}
	cat, err := manifest.ParseCatalogue(strings.NewReader(goodCatalogue))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		m, err := manifest.Parse(bytes.NewReader(doc))
		if err != nil {
			if !errors.Is(err, manifest.ErrInvalid) || strings.TrimSpace(strings.TrimPrefix(err.Error(), manifest.ErrInvalid.Error()+":")) == "" {
				t.Fatalf("Parse error %q does not wrap ErrInvalid with a reason", err)
			}
			return
		}
		if verr := m.Validate(cat); verr != nil && !errors.Is(verr, manifest.ErrInvalid) && !errors.Is(verr, manifest.ErrUnknownTopic) {
			t.Fatalf("Validate error %v wraps neither ErrInvalid nor ErrUnknownTopic", verr)
		}
		once, err := yaml.Marshal(m)
		if err != nil {
			t.Fatalf("marshal %+v: %v", m, err)
		}
		m2, err := manifest.Parse(bytes.NewReader(once))
		if err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v\n%s", err, once)
		}
		twice, err := yaml.Marshal(m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("round trip changed the manifest:\n%s\n---\n%s", once, twice)
		}
	})
}

// FuzzParseCatalogue: no panic; errors wrap ErrInvalid; Validate of a
// parsed catalogue does not panic.
func FuzzParseCatalogue(f *testing.F) {
	f.Add([]byte(goodCatalogue))
	if b, err := os.ReadFile("../../topics.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("topics:\n  x: {retention: 1s, event_types: [a, a]}\n"))
	f.Add([]byte("topics: [1]\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := manifest.ParseCatalogue(bytes.NewReader(doc))
		if err != nil {
			if !errors.Is(err, manifest.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if verr := c.Validate(); verr != nil && !errors.Is(verr, manifest.ErrInvalid) {
			t.Fatalf("Validate error %v does not wrap ErrInvalid", verr)
		}
	})
}
