package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/events/contract"
)

const repoRoot = "../../.."

// TestCheckPassesOnTheRepository runs the command as `make contracts`
// would with -check: the committed contracts are current.
func TestCheckPassesOnTheRepository(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-root", repoRoot, "-check"}, &out); err != nil {
		t.Fatalf("contracts -check: %v\n%s", err, out.String())
	}
}

// TestWriteRegeneratesAStaleCopy runs the command on a copy of the files
// it reads whose docs/events.md is missing: it writes exactly that file,
// identical to the committed one.
func TestWriteRegeneratesAStaleCopy(t *testing.T) {
	root := t.TempDir()
	copyFile(t, "topics.yaml", root)
	ms, err := filepath.Glob(filepath.Join(repoRoot, "functions", "*", "function.yaml"))
	if err != nil || len(ms) == 0 {
		t.Fatalf("manifests: %v %v", ms, err)
	}
	for _, m := range ms {
		rel, _ := filepath.Rel(repoRoot, m)
		copyFile(t, rel, root)
	}
	schemas, _ := filepath.Glob(filepath.Join(repoRoot, filepath.FromSlash(domain.ContractsDir), "*"))
	for _, s := range schemas {
		rel, _ := filepath.Rel(repoRoot, s)
		copyFile(t, rel, root)
	}
	var out bytes.Buffer
	if err := run([]string{"-root", root, "-check"}, &out); !errors.Is(err, contract.ErrStale) {
		t.Fatalf("-check on a copy without docs/events.md = %v, want ErrStale", err)
	}
	if err := run([]string{"-root", root}, &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "wrote "+contract.DefaultDocs {
		t.Fatalf("output = %q", got)
	}
	want, _ := os.ReadFile(filepath.Join(repoRoot, contract.DefaultDocs))
	got, _ := os.ReadFile(filepath.Join(root, contract.DefaultDocs))
	if !bytes.Equal(got, want) {
		t.Fatal("regenerated docs/events.md differs from the committed one")
	}
}

func copyFile(t *testing.T, rel, root string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
