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
//
// It never overwrites the schema of a published version with a change
// that breaks its consumers (a removed or renamed field, a changed type, a
// new required field, a narrowed enum or range): it writes everything
// else, prints one line per offending field and exits 1. Such a change is
// a new version (...v2) registered beside the old one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/events/contract"
)

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("contracts", flag.ContinueOnError)
	root := fs.String("root", ".", "repository root (holds topics.yaml and functions/)")
	check := fs.Bool("check", false, "do not write; fail when the contracts are stale or a published version would break")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out, err := contract.Generate(contract.Config{Root: *root, Dir: domain.ContractsDir, Docs: contract.DefaultDocs})
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
