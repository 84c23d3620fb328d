package infra_test

import (
	"fmt"
	"os"
	"testing"

	"example.com/platform/tests/infra"
)

// h is the harness shared by every test of the package: one CLI choice,
// one provider build.
var h *infra.Harness

func TestMain(m *testing.M) {
	var err error
	h, err = infra.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra checks:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "infra checks: using %s (real provider: %v)\n", h.Binary, h.RealProvider)
	code := m.Run()
	if err := h.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "infra checks:", err)
	}
	os.Exit(code)
}
