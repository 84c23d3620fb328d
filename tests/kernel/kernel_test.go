// Package kernel checks that the shared kernel stands without the reference
// domain: a fork deletes functions/ordersapi, payment and shipment and
// shared/domain, and everything else in shared/ still builds and vets.
package kernel

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// domainPackages are the folders a fork deletes with the reference
// services (relative to shared/).
var domainPackages = []string{"domain"}

func TestKernelBuildsWithoutTheDomain(t *testing.T) {
	src, err := filepath.Abs("../../shared")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "shared")
	if err := copyTree(src, dst, domainPackages); err != nil {
		t.Fatal(err)
	}
	for _, p := range domainPackages {
		if _, err := os.Stat(filepath.Join(dst, p)); !os.IsNotExist(err) {
			t.Fatalf("%s was copied", p)
		}
	}
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dst
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in a copy of shared/ without %v: %v\n%s", strings.Join(args, " "), domainPackages, err, out)
		}
	}
}

// copyTree copies the regular files of src to dst, leaving out the
// top-level folders in skip.
func copyTree(src, dst string, skip []string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
