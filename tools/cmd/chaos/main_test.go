package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad flags are usage errors (exit 2) reported before anything starts.
// The run itself is covered by tools/localstack/chaos's test.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-orders", "0"}, "bad arguments"},
		{[]string{"-workers", "0"}, "bad arguments"},
		{[]string{"-rate", "-1"}, "bad arguments"},
		{[]string{"-backoff-scale", "0"}, "bad arguments"},
		{[]string{"-timeout", "0s"}, "bad arguments"},
		{[]string{"extra"}, "bad arguments"},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"-seed", "x"}, "invalid value"},
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
