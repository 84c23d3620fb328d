package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad flags are usage errors (exit 2) reported before anything starts.
// The run itself is covered by tests/e2e, which drives the same
// scenario package against a started stack.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "3"}, "-n must be at least 4"},
		{[]string{"-timeout", "0s"}, "must be positive"},
		{[]string{"-backoff-scale", "-1"}, "must be positive"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-nope"}, "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%v) = %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run(%v) stderr %q lacks %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("run(%v) wrote to stdout: %q", tc.args, stdout.String())
		}
	}
}
