// Command contracts regenerates the event contracts of the reference
// domain from its Go payload types, topics.yaml and the function
// manifests: shared/domain/contracts/<type>.json (one JSON Schema per
// event type and version), shared/domain/contracts/asyncapi.yaml (AsyncAPI
// 3.0) and docs/events.md (the catalogue with a Mermaid diagram).
//
// Usage, from the repository root (`make contracts`):
//
//	go run ./tools/cmd/contracts          # write new versions and compatible changes
//	go run ./tools/cmd/contracts -check   # write nothing; fail when stale or breaking
//	go run ./tools/cmd/contracts -check -since origin/main
//	                                      # also gate the committed schemas against
//	                                      # those of a git revision (hand edits, removals)
//
// It never overwrites the schema of a published version with a change
// that breaks its consumers (a removed or renamed field, a changed type, a
// new required field, a narrowed enum or range): it writes everything
// else, prints one line per offending field and exits 1. Such a change is
// a new version (...v2) registered beside the old one.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/events/contract"
)

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("contracts", flag.ContinueOnError)
	root := fs.String("root", ".", "repository root (holds topics.yaml and functions/)")
	check := fs.Bool("check", false, "do not write; fail when the contracts are stale or a published version would break")
	since := fs.String("since", "", "git revision whose committed schemas are the baseline too (e.g. the merge base); catches a schema edited by hand")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *since != "" {
		if err := checkSince(*root, domain.ContractsDir, *since); err != nil {
			return err
		}
	}
	out, err := contract.Generate(contract.Config{
		Root: *root, Dir: domain.ContractsDir, Docs: contract.DefaultDocs,
		Sources: map[string]string{
			reflect.TypeFor[domain.OrderCreated]().PkgPath(): filepath.Join(*root, filepath.FromSlash(domain.Dir)),
		},
	})
	if err != nil {
		return err
	}
	for _, c := range out.Compatible {
		fmt.Fprintln(stdout, "compatible:", c)
	}
	if *check {
		return out.Check(*root)
	}
	stale, err := out.Stale(*root)
	if err != nil {
		return err
	}
	if err := out.Write(*root); err != nil {
		return err
	}
	for _, p := range stale {
		fmt.Fprintln(stdout, "wrote", p)
	}
	return nil
}

// checkSince compares the schemas committed in dir at revision rev with
// those in the working tree under root (contract.CompareBaseline).
func checkSince(root, dir, rev string) error {
	git := func(args ...string) ([]byte, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	top, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(filepath.Join(root, filepath.FromSlash(dir)))
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(strings.TrimSpace(string(top)), abs)
	if err != nil {
		return err
	}
	rel = filepath.ToSlash(rel)
	names, err := git("ls-tree", "--name-only", rev, rel+"/")
	if err != nil {
		return err
	}
	base, head := map[string][]byte{}, map[string][]byte{}
	for _, p := range strings.Fields(string(names)) {
		if path.Ext(p) != ".json" {
			continue
		}
		if base[path.Base(p)], err = git("show", rev+":"+p); err != nil {
			return err
		}
	}
	files, err := filepath.Glob(filepath.Join(abs, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if head[filepath.Base(f)], err = os.ReadFile(f); err != nil {
			return err
		}
	}
	changes, err := contract.CompareBaseline(base, head)
	if err != nil {
		return err
	}
	if br := contract.Breaking(changes); len(br) > 0 {
		return &contract.BreakingError{Changes: br}
	}
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		var be *contract.BreakingError
		if errors.As(err, &be) {
			for _, c := range be.Changes {
				fmt.Fprintln(os.Stderr, c)
			}
			fmt.Fprintln(os.Stderr, "contracts: refused to overwrite the schemas above: keep each old version and register the change as a new one beside it")
		} else {
			fmt.Fprintln(os.Stderr, "contracts:", err)
		}
		os.Exit(1)
	}
}
