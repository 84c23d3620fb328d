package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-backoff-scale", "0"}, {"-backoff-scale", "-1"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("run(%v) = %d, want 2; stderr %s", args, code, errb.String())
		}
		if errb.Len() == 0 {
			t.Errorf("run(%v): no message", args)
		}
	}
}

func TestUnknownFunctionFailsBeforeStarting(t *testing.T) {
	var out, errb bytes.Buffer
	t.Setenv("DATABASE_URL", "postgres://unused")
	if code := run([]string{"-functions", "nope"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "nope") {
		t.Errorf("code %d, stderr %s", code, errb.String())
	}
}
