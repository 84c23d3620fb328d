// Command codeowners writes the repository's CODEOWNERS file from the
// function manifests (functions/*/function.yaml): each function folder is
// owned by the codeowners of its manifest's team, everything else by the
// platform owners.
//
// Usage, from the repository root:
//
//	go run ./tools/cmd/codeowners            # rewrite CODEOWNERS
//	go run ./tools/cmd/codeowners -check     # exit 1 when CODEOWNERS is stale
//
// The test of this package fails when the committed CODEOWNERS differs from
// what the manifests generate, so a manifest change cannot land without it.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"example.com/platform/shared/manifest"
)

// DefaultOwners own everything no manifest claims: shared/, infra/, tools/,
// tests/, topics.yaml and the build.
var DefaultOwners = []string{"@example-org/platform"}

// ErrStale is returned by Check when the file differs from the generated one.
var ErrStale = errors.New("CODEOWNERS is stale: run go run ./tools/cmd/codeowners")

const header = `# CODEOWNERS: generated from functions/*/function.yaml by
# tools/cmd/codeowners. Do not edit by hand: change the manifest's
# owner.codeowners and run "go run ./tools/cmd/codeowners" from the root.
# Later lines win, so the catch-all comes first.
`

// Generate renders CODEOWNERS for repo: a catch-all line for defaults, then
// one line per function folder (sorted by name) with its manifest's
// codeowners. It is deterministic and ends with a newline.
func Generate(repo *manifest.Repo, defaults []string) ([]byte, error) {
	if len(defaults) == 0 {
		return nil, errors.New("generate CODEOWNERS: at least one default owner is required")
	}
	var b bytes.Buffer
	b.WriteString(header)
	fmt.Fprintf(&b, "\n*  %s\n", strings.Join(defaults, " "))
	if len(repo.Functions) > 0 {
		b.WriteString("\n# Functions, by owning team.\n")
	}
	for _, m := range repo.Functions {
		if len(m.Owner.Codeowners) == 0 {
			return nil, fmt.Errorf("generate CODEOWNERS: function %s has no owner.codeowners", m.Name)
		}
		fmt.Fprintf(&b, "# team %s\n/functions/%s/  %s\n", m.Owner.Team, m.Name, strings.Join(m.Owner.Codeowners, " "))
	}
	return b.Bytes(), nil
}

// Check compares the file at path with want; it wraps ErrStale when they
// differ or the file is missing.
func Check(path string, want []byte) error {
	got, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (%s does not exist)", ErrStale, path)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w (%s differs from the manifests)", ErrStale, path)
	}
	return nil
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("codeowners", flag.ContinueOnError)
	root := fs.String("root", ".", "repository root (holds topics.yaml and functions/)")
	out := fs.String("o", "", "output file (default <root>/CODEOWNERS; - for stdout)")
	check := fs.Bool("check", false, "do not write; fail when the file is stale")
	owners := fs.String("default", strings.Join(DefaultOwners, " "), "space-separated owners of everything no manifest claims")
	if err := fs.Parse(args); err != nil {
		return err
	}
	repo, err := manifest.LoadRepo(*root)
	if err != nil {
		return fmt.Errorf("load manifests: %w", err)
	}
	data, err := Generate(repo, strings.Fields(*owners))
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = filepath.Join(*root, "CODEOWNERS")
	}
	switch {
	case path == "-":
		_, err = stdout.Write(data)
		return err
	case *check:
		return Check(path, data)
	default:
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "codeowners:", err)
		os.Exit(1)
	}
}
