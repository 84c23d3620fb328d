// Command package builds one deployable source archive per function:
// dist/<name>.zip holds the function's folder with example.com/platform/shared
// (and every other dependency) vendored and the local replace directive
// removed, so it builds with GOWORK=off and no network, the way Cloud
// Build's Go buildpack builds an uploaded folder.
//
// Archives are deterministic (sorted entries, fixed times and modes): the
// same sources give the same bytes, so the pipeline's content-hash object
// names redeploy only what changed. Tests (_test.go, testdata/) and the
// local-run program (cmd/) are left out.
//
//	go run ./tools/cmd/package [-root .] [-out dist] [name ...]
package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

func main() {
	root := flag.String("root", ".", "repository root")
	out := flag.String("out", "dist", "output directory (relative to -root unless absolute)")
	flag.Parse()
	names, err := Functions(*root, flag.Args())
	if err == nil {
		dir := *out
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(*root, dir)
		}
		for _, name := range names {
			var path string
			if path, err = Package(*root, name, dir); err != nil {
				break
			}
			fmt.Println(path)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

// Functions lists the function folders (those with a go.mod) under
// root/functions, or checks that the given names are such folders.
func Functions(root string, only []string) ([]string, error) {
	mods, err := filepath.Glob(filepath.Join(root, "functions", "*", "go.mod"))
	if err != nil {
		return nil, err
	}
	var all []string
	for _, m := range mods {
		all = append(all, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(all)
	if len(only) == 0 {
		if len(all) == 0 {
			return nil, fmt.Errorf("no functions/*/go.mod under %s", root)
		}
		return all, nil
	}
	for _, n := range only {
		if !contains(all, n) {
			return nil, fmt.Errorf("no function %q (have %s)", n, strings.Join(all, ", "))
		}
	}
	return only, nil
}

// Package writes outDir/<name>.zip and returns its path.
func Package(root, name, outDir string) (string, error) {
	src := filepath.Join(root, "functions", name)
	work, err := os.MkdirTemp("", "package-"+name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := copyTree(src, work); err != nil {
		return "", fmt.Errorf("copy %s: %w", name, err)
	}
	gomod := filepath.Join(work, "go.mod")
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	// Point local replacements at their absolute paths for vendoring.
	absRoot, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	local, data := absolutiseReplaces(data, absRoot)
	if err := os.WriteFile(gomod, data, 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "mod", "vendor")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod vendor in %s: %w\n%s", name, err, out)
	}
	// The archive must not depend on folders outside it: drop the local
	// replace directives; vendor/ now holds those modules.
	if err := os.WriteFile(gomod, dropReplaces(data, local), 0o644); err != nil {
		return "", err
	}
	mt := filepath.Join(work, "vendor", "modules.txt")
	modules, err := os.ReadFile(mt)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(mt, dropVendorReplaces(modules, local), 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	zipPath := filepath.Join(outDir, name+".zip")
	if err := writeZip(work, zipPath); err != nil {
		return "", err
	}
	return zipPath, nil
}

// skip reports whether a path of the function folder stays out of the
// archive.
func skip(rel string, d fs.DirEntry) bool {
	base := d.Name()
	if d.IsDir() {
		return rel == "cmd" || rel == "vendor" || base == "testdata" || strings.HasPrefix(base, ".")
	}
	return strings.HasSuffix(base, "_test.go") || strings.HasPrefix(base, ".")
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return nil
		}
		if skip(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files can be packaged", rel)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

var replaceRE = regexp.MustCompile(`(?m)^replace\s+(\S+)(?:\s+\S+)?\s+=>\s+(\.{1,2}/\S*|/\S*)\s*$`)

// absolutiseReplaces rewrites local-path replace directives (single-line
// form) to absolute paths and returns the replaced module paths.
func absolutiseReplaces(gomod []byte, dir string) ([]string, []byte) {
	var mods []string
	out := replaceRE.ReplaceAllFunc(gomod, func(line []byte) []byte {
		m := replaceRE.FindSubmatch(line)
		mods = append(mods, string(m[1]))
		p := string(m[2])
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return []byte("replace " + string(m[1]) + " => " + p)
	})
	return mods, out
}

func dropReplaces(gomod []byte, mods []string) []byte {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(gomod), "\n") {
		if m := replaceRE.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil && contains(mods, m[1]) {
			continue
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

// dropVendorReplaces removes the "=> path" annotations of the local
// replacements from vendor/modules.txt, keeping it consistent with the
// go.mod that no longer has them.
func dropVendorReplaces(modules []byte, mods []string) []byte {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(modules), "\n") {
		trim := strings.TrimRight(line, "\n")
		for _, m := range mods {
			if strings.HasPrefix(trim, "# "+m+" => ") {
				trim = ""
				break
			}
			if strings.HasPrefix(trim, "# "+m+" ") && strings.Contains(trim, " => ") {
				trim = trim[:strings.Index(trim, " => ")]
			}
		}
		if trim == "" && strings.TrimSpace(line) != "" {
			continue
		}
		b.WriteString(trim)
		if strings.HasSuffix(line, "\n") {
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// epoch is the modification time of every archive entry.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func writeZip(dir, path string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, rel := range files {
		h := &zip.FileHeader{Name: rel, Method: zip.Deflate, Modified: epoch}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			f.Close()
			return err
		}
		src, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			f.Close()
			return err
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
