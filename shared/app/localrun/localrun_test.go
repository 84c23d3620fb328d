package localrun

import (
	"os"
	"strings"
	"testing"
)

func TestServeDefaultsTheTargetAndReportsAServerFailure(t *testing.T) {
	t.Setenv("FUNCTION_TARGET", "")
	t.Setenv("PORT", "not-a-port")
	err := Serve("Entry")
	if err == nil || !strings.Contains(err.Error(), "funcframework.Start") {
		t.Fatalf("err %v, want the server's failure", err)
	}
	if got := os.Getenv("FUNCTION_TARGET"); got != "Entry" {
		t.Fatalf("FUNCTION_TARGET %q, want the entry point", got)
	}
}
