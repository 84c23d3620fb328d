package stack

import (
	"bytes"
	"sync"
	"testing"
)

func TestPrefixWriterTagsWholeLines(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := newPrefixWriter("fn", 4, &mu, &out)
	for _, chunk := range []string{"hel", "lo\nwor", "ld\n", "\n  \n", "tail"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := out.String(), "fn   | hello\nfn   | world\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnvListOverrides(t *testing.T) {
	got := envList([]string{"A=1", "B=2", "A=3"}, map[string]string{"B": "x", "C": "y"})
	want := map[string]bool{"A=3": true, "B=x": true, "C=y": true}
	if len(got) != 3 {
		t.Fatalf("got %v", got)
	}
	for _, kv := range got {
		if !want[kv] {
			t.Errorf("unexpected %s in %v", kv, got)
		}
	}
}
