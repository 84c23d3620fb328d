package main

import (
	"archive/zip"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unzipAndBuild extracts archive into a fresh directory, far from the
// repository, and builds it the way the buildpack does: no workspace, no
// network, vendored dependencies only.
func unzipAndBuild(t *testing.T, archive string) (dir string, names []string) {
	t.Helper()
	zr, err := zip.OpenReader(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	dir = t.TempDir()
	for _, f := range zr.File {
		names = append(names, f.Name)
		target := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		rc.Close()
		if err := os.WriteFile(target, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// -trimpath keeps the build cache valid across temp directories.
	cmd := exec.Command("go", "build", "-trimpath", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=vendor", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build of unpacked %s: %v\n%s", filepath.Base(archive), err, out)
	}
	return dir, names
}

func TestPackageFixtureBuildsAloneAndIsDeterministic(t *testing.T) {
	out := t.TempDir()
	path, err := Package("testdata/repo", "hello", out)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	dir, names := unzipAndBuild(t, path)
	joined := strings.Join(names, "\n")
	for _, want := range []string{"go.mod", "hello.go", "vendor/modules.txt", "vendor/example.com/platform/shared/greet/greet.go"} {
		if !strings.Contains(joined, want) {
			t.Errorf("archive lacks %s:\n%s", want, joined)
		}
	}
	for _, unwanted := range []string{"hello_test.go", "testdata/", "cmd/main.go"} {
		if strings.Contains(joined, unwanted) {
			t.Errorf("archive contains %s", unwanted)
		}
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if strings.Contains(string(gomod), "replace") {
		t.Errorf("packaged go.mod keeps a replace directive:\n%s", gomod)
	}
	again, err := Package("testdata/repo", "hello", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(again)
	if !bytes.Equal(first, second) {
		t.Fatal("two packagings of the same sources differ")
	}
}

func TestFunctionsListsAndChecksNames(t *testing.T) {
	names, err := Functions("testdata/repo", nil)
	if err != nil || strings.Join(names, ",") != "hello" {
		t.Fatalf("names %v err %v", names, err)
	}
	if _, err := Functions("testdata/repo", []string{"nope"}); err == nil || !strings.Contains(err.Error(), `no function "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestEveryRepositoryFunctionPackages is the check the pipeline relies on:
// every real function's archive builds on its own.
func TestEveryRepositoryFunctionPackages(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	names, err := Functions(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			path, err := Package(root, name, out)
			if err != nil {
				t.Fatal(err)
			}
			unzipAndBuild(t, path)
		})
	}
}
