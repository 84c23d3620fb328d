// Package readme_test runs the commands the README documents that no other
// test covers.
package readme_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var root = filepath.Join("..", "..")

// readmeLine returns the README line that starts with prefix, inside a
// code block.
func readmeLine(t *testing.T, prefix string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			in = !in
			continue
		}
		if in && strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("README has no command starting with %q", prefix)
	return ""
}

// TestForkRenameCommand runs the README's module-path rename on a copy of
// the repository and builds the result on its own.
func TestForkRenameCommand(t *testing.T) {
	cmdline := readmeLine(t, "git grep -l 'example.com/platform'")
	dir := t.TempDir()
	// A copy of the tracked files, as a fork's fresh clone would have.
	files, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err) // a source archive without .git has nothing to rename with git grep
	}
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree
			}
			t.Fatal(err)
		}
		target := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run("git", "init", "-q")
	run("git", "add", "-A")
	run("sh", "-c", cmdline)
	if out, _ := exec.Command("grep", "-rl", "example.com/platform", dir).Output(); len(out) > 0 {
		t.Fatalf("files still name the old module path:\n%s", out)
	}
	// The renamed shared module and a function that depends on it build
	// alone, from the module cache only.
	for _, m := range []string{"shared", "functions/shipment"} {
		cmd := exec.Command("go", "build", "./...")
		cmd.Dir = filepath.Join(dir, m)
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s after rename: %v\n%s", m, err, out)
		}
	}
}
