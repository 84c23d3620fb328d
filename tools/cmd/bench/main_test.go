package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-no-such-flag"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("run(%v) = %d, want 2 (stderr %q)", args, code, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("run(%v) wrote to stdout: %q", args, out.String())
		}
	}
	var errb bytes.Buffer
	run(context.Background(), []string{"-h"}, &bytes.Buffer{}, &errb)
	if !strings.Contains(errb.String(), "-quick") {
		t.Errorf("usage does not list -quick: %q", errb.String())
	}
}
