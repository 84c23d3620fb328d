package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
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
	root := copyRepo(t)
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(contract.DefaultDocs))); err != nil {
		t.Fatal(err)
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

// TestSinceCatchesAHandEditedSchema commits a copy of the repository's
// inputs and contracts to a new git repository, then edits a published
// schema by hand so that it matches nothing the types generate: -since
// HEAD fails with the line of the field, from the git baseline alone (the
// regenerating check, which runs after it, would catch this edit too; only
// the baseline catches one made together with the Go type, which a test
// cannot make without editing the domain).
func TestSinceCatchesAHandEditedSchema(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	root := copyRepo(t)
	gitIn(t, root, "init", "-q")
	gitIn(t, root, "add", "-A")
	gitIn(t, root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
	var out bytes.Buffer
	if err := run([]string{"-root", root, "-check", "-since", "HEAD"}, &out); err != nil {
		t.Fatalf("-since HEAD on an unchanged tree: %v", err)
	}
	p := filepath.Join(root, filepath.FromSlash(domain.ContractsDir), domain.TypeOrderCreated+".json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(b, []byte(`"customer_id": {
      "type": "string"
    }`), []byte(`"customer_id": {
      "type": "integer"
    }`), 1)
	if bytes.Equal(edited, b) {
		t.Fatal("mutation did not apply")
	}
	if err := os.WriteFile(p, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	err = run([]string{"-root", root, "-check", "-since", "HEAD"}, &out)
	want := "com.example.orders.order.created.v1: field customer_id: type changed from string to integer: publish it as com.example.orders.order.created.v2"
	var be *contract.BreakingError
	if !errors.As(err, &be) || len(be.Changes) != 1 || be.Changes[0].String() != want {
		t.Fatalf("err = %v, want the line %q", err, want)
	}
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// copyRepo copies what the command reads (topics.yaml, the manifests,
// the domain's Go files for their comments, the contracts,
// docs/events.md) to a temporary root.
func copyRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	var rels []string
	for _, pattern := range []string{"topics.yaml", "functions/*/function.yaml", domain.Dir + "/*.go", domain.ContractsDir + "/*", contract.DefaultDocs} {
		ms, err := filepath.Glob(filepath.Join(repoRoot, filepath.FromSlash(pattern)))
		if err != nil || len(ms) == 0 {
			t.Fatalf("%s: %v %v", pattern, ms, err)
		}
		for _, m := range ms {
			rel, _ := filepath.Rel(repoRoot, m)
			rels = append(rels, rel)
		}
	}
	for _, rel := range rels {
		copyFile(t, rel, root)
	}
	return root
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
