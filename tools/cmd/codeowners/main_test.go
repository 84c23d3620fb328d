package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/platform/shared/manifest"
)

const repoRoot = "../../.."

// TestCommittedFileIsCurrent fails when a manifest changed without
// regenerating CODEOWNERS.
func TestCommittedFileIsCurrent(t *testing.T) {
	repo, err := manifest.LoadRepo(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Generate(repo, DefaultOwners)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(filepath.Join(repoRoot, "CODEOWNERS"), want); err != nil {
		t.Fatalf("%v\nwant:\n%s", err, want)
	}
	for _, m := range repo.Functions {
		line := "/functions/" + m.Name + "/  " + strings.Join(m.Owner.Codeowners, " ")
		if !bytes.Contains(want, []byte(line)) {
			t.Errorf("generated CODEOWNERS lacks %q", line)
		}
	}
}

const topics = `topics:
  order.created:
    description: d
    owner: orders
    event_types: [com.example.orders.order.created.v1]
`

const fn = `name: NAME
description: d
owner:
  team: TEAM
  codeowners: [OWNERS]
kind: cloudevent
entry_point: Handle
idempotency: none
consumes:
  - topic: order.created
    max_delivery_attempts: 5
    min_backoff: 10s
    max_backoff: 60s
    ack_deadline: 30s
resources:
  memory: 256Mi
  cpu: "1"
  concurrency: 10
  max_instances: 2
  timeout: 30s
  handler_timeout: 20s
`

func writeRepo(t *testing.T, fns map[string][2]string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "topics.yaml"), []byte(topics), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, v := range fns {
		dir := filepath.Join(root, "functions", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		y := strings.NewReplacer("NAME", name, "TEAM", v[0], "OWNERS", v[1]).Replace(fn)
		if err := os.WriteFile(filepath.Join(dir, "function.yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestGenerateOrdersFunctionsAndCatchAllFirst(t *testing.T) {
	root := writeRepo(t, map[string][2]string{
		"zeta":  {"team-z", `"@org/z", "z@example.com"`},
		"alpha": {"team-a", `"@org/a"`},
	})
	repo, err := manifest.LoadRepo(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Generate(repo, []string{"@org/platform"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	all := strings.Index(s, "*  @org/platform\n")
	a := strings.Index(s, "# team team-a\n/functions/alpha/  @org/a\n")
	z := strings.Index(s, "# team team-z\n/functions/zeta/  @org/z z@example.com\n")
	if all < 0 || a < 0 || z < 0 || !(all < a && a < z) {
		t.Fatalf("unexpected CODEOWNERS:\n%s", s)
	}
	if _, err := Generate(repo, nil); err == nil {
		t.Fatal("Generate without default owners succeeded")
	}
}

func TestRunWritesThenCheckDetectsStaleness(t *testing.T) {
	root := writeRepo(t, map[string][2]string{"alpha": {"team-a", `"@org/a"`}})
	if err := run([]string{"-root", root}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-root", root, "-check"}, new(bytes.Buffer)); err != nil {
		t.Fatalf("fresh file reported stale: %v", err)
	}
	// A manifest changes owners: the committed file is now stale.
	y := strings.NewReplacer("NAME", "alpha", "TEAM", "team-b", "OWNERS", `"@org/b"`).Replace(fn)
	if err := os.WriteFile(filepath.Join(root, "functions", "alpha", "function.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-root", root, "-check"}, new(bytes.Buffer)); !errors.Is(err, ErrStale) {
		t.Fatalf("check after owner change: err = %v, want ErrStale", err)
	}
	if err := os.Remove(filepath.Join(root, "CODEOWNERS")); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-root", root, "-check"}, new(bytes.Buffer)); !errors.Is(err, ErrStale) {
		t.Fatalf("check of a missing file: err = %v, want ErrStale", err)
	}
	var out bytes.Buffer
	if err := run([]string{"-root", root, "-o", "-"}, &out); err != nil || !strings.Contains(out.String(), "@org/b") {
		t.Fatalf("stdout output: err=%v\n%s", err, out.String())
	}
}

func TestInvalidManifestFails(t *testing.T) {
	root := writeRepo(t, map[string][2]string{"alpha": {"Bad Team", `"@org/a"`}})
	if err := run([]string{"-root", root, "-check"}, new(bytes.Buffer)); !errors.Is(err, manifest.ErrInvalid) {
		t.Fatalf("err = %v, want manifest.ErrInvalid", err)
	}
}
