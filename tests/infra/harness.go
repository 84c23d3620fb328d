// Package infra runs the project's Terraform (infra/) offline: it chooses a
// Terraform or OpenTofu binary (building OpenTofu from the Go module proxy
// when neither is installed), builds the test provider (tests/tfprovider)
// that serves the real hashicorp/google schema, and points the CLI at it
// with a dev_overrides CLI configuration. The checks themselves are the
// tests of this package; docs/infra-checks.md explains what they prove.
//
// Environment:
//
//	INFRA_TF_BINARY      "tofu", "terraform" or a path; default: tofu on PATH,
//	                     then terraform on PATH, then a cached OpenTofu build.
//	                     "tofu" with no tofu on PATH builds OpenTofu.
//	INFRA_REAL_PROVIDER  "1": use the real provider however the CLI normally
//	                     installs it (terraform init); no CLI config override.
//	INFRA_TOFU_CACHE     cache root for the OpenTofu build
//	                     (default ${XDG_CACHE_HOME:-~/.cache}/platform-tofu).
package infra

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Environment variables read by this package.
const (
	EnvBinary       = "INFRA_TF_BINARY"
	EnvRealProvider = "INFRA_REAL_PROVIDER"
)

// SchemaFile is the provider schema subset served by the test provider,
// relative to the repository root.
const SchemaFile = "tests/testdata/google-provider-7.45.0-schema.json.gz"

// ErrNoRepoRoot is returned when no directory above the working directory
// holds both go.work and topics.yaml.
var ErrNoRepoRoot = errors.New("repository root not found (no go.work with topics.yaml above the working directory)")

// RepoRoot returns the repository root above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if exists(filepath.Join(dir, "go.work")) && exists(filepath.Join(dir, "topics.yaml")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRepoRoot
		}
		dir = parent
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// FindBinary chooses the CLI: $INFRA_TF_BINARY (a name looked up on PATH or
// a path), else tofu on PATH, else terraform on PATH, else OpenTofu built by
// BuildTofu. INFRA_TF_BINARY=tofu with no tofu on PATH builds OpenTofu too,
// which is how CI keeps the build path exercised.
func FindBinary(root string) (string, error) {
	if want := os.Getenv(EnvBinary); want != "" {
		if strings.ContainsRune(want, os.PathSeparator) {
			if !exists(want) {
				return "", fmt.Errorf("%s=%s: no such file", EnvBinary, want)
			}
			return want, nil
		}
		if p, err := exec.LookPath(want); err == nil {
			return p, nil
		}
		if want == "tofu" {
			return BuildTofu(root)
		}
		return "", fmt.Errorf("%s=%s: not on PATH", EnvBinary, want)
	}
	for _, name := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return BuildTofu(root)
}

// BuildTofu builds the OpenTofu version pinned in tools/tofu/build/go.mod
// with tools/tofu/build.sh, or reuses the cached binary, and returns its
// path. A first build takes several minutes on two cores.
func BuildTofu(root string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(root, "tools", "tofu", "build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build OpenTofu: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// TerraformBinary returns the CLI chosen by FindBinary, deciding once per
// process; it fails tb when none can be found or built.
func TerraformBinary(tb testing.TB) string {
	tb.Helper()
	binaryOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath, binaryErr = FindBinary(root)
	})
	if binaryErr != nil {
		tb.Fatalf("terraform binary: %v", binaryErr)
	}
	return binaryPath
}

// Harness is the per-test-binary setup shared by every check. Its methods
// are safe for concurrent use by parallel tests: each test works in its own
// copy of the repository.
type Harness struct {
	Root         string // repository root (the original; never written to)
	Binary       string // terraform or tofu
	RealProvider bool   // INFRA_REAL_PROVIDER=1
	dir          string // temporary directory owned by the harness
	env          map[string]string
}

// New chooses the CLI and, unless INFRA_REAL_PROVIDER=1, builds the test
// provider into a temporary directory and writes a CLI configuration whose
// dev_overrides entry makes hashicorp/google resolve to it. Call Close when
// done.
func New() (*Harness, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin, err := FindBinary(root)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "infra-checks-")
	if err != nil {
		return nil, err
	}
	h := &Harness{
		Root: root, Binary: bin, RealProvider: os.Getenv(EnvRealProvider) == "1", dir: dir,
		env: map[string]string{"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_INPUT": "0"},
	}
	if h.RealProvider {
		return h, nil
	}
	plugins := filepath.Join(dir, "plugins")
	build := exec.Command("go", "build",
		"-ldflags", "-X main.schemaPath="+filepath.Join(root, SchemaFile),
		"-o", filepath.Join(plugins, "terraform-provider-google"),
		"example.com/platform/tests/tfprovider")
	build.Dir = filepath.Join(root, "tests")
	if out, err := build.CombinedOutput(); err != nil {
		h.Close()
		return nil, fmt.Errorf("build test provider: %w\n%s", err, out)
	}
	cfg := filepath.Join(dir, "cli.tfrc")
	text := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"hashicorp/google\" = %q\n  }\n  direct {}\n}\n", plugins)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		h.Close()
		return nil, err
	}
	h.env["TF_CLI_CONFIG_FILE"] = cfg
	return h, nil
}

// Close removes the harness's temporary directory.
func (h *Harness) Close() error { return os.RemoveAll(h.dir) }

// Options returns terratest options for the configuration in dir with vars,
// using the harness's CLI and environment.
func (h *Harness) Options(tb testing.TB, dir string, vars map[string]any) *terraform.Options {
	tb.Helper()
	env := make(map[string]string, len(h.env))
	for k, v := range h.env {
		env[k] = v
	}
	return &terraform.Options{
		TerraformBinary: h.Binary,
		TerraformDir:    dir,
		Vars:            vars,
		EnvVars:         env,
		NoColor:         true,
		Lock:            false,
		PlanFilePath:    filepath.Join(tb.TempDir(), "plan.out"),
		Logger:          logger.Discard,
	}
}

// copySkip names what CopyRepo leaves out: version control, the Go test
// tree and tooling, build output and Terraform working data.
var copySkip = map[string]bool{".git": true, "tests": true, "tools": true, "dist": true, "node_modules": true, ".terraform": true}

// CopyRepo copies the repository (without .git, tests, tools, hidden and
// Terraform working files) into a temporary directory of tb, so modules
// that read ../../../functions or topics.yaml find them at the same
// relative paths, and returns the copy of rel. Backend blocks of the
// configuration in rel are removed (see StripBackend): the copy uses local
// state and needs no backend initialisation.
func (h *Harness) CopyRepo(tb testing.TB, rel string) string {
	tb.Helper()
	dst := tb.TempDir()
	err := filepath.WalkDir(h.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(h.Root, p)
		if r == "." {
			return nil
		}
		name := d.Name()
		if copySkip[name] || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tfstate") || strings.HasSuffix(name, ".tfstate.backup") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, r)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		tb.Fatalf("copy repository: %v", err)
	}
	out := filepath.Join(dst, rel)
	if err := StripBackend(out); err != nil {
		tb.Fatalf("strip backend of %s: %v", rel, err)
	}
	return out
}

// StripBackend removes every backend block from the terraform blocks of
// the .tf files directly in dir (a root module), rewriting only the files
// that had one. Plans then use local state: a GCS backend would need
// credentials, and initialising any backend needs `init`, which with a
// dev_overrides provider tries to reach a registry.
func StripBackend(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return err
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		file, diags := hclwrite.ParseConfig(src, f, hcl.InitialPos)
		if diags.HasErrors() {
			return fmt.Errorf("parse %s: %s", f, diags.Error())
		}
		changed := false
		for _, b := range file.Body().Blocks() {
			if b.Type() != "terraform" {
				continue
			}
			for _, nb := range b.Body().Blocks() {
				if nb.Type() == "backend" || nb.Type() == "cloud" {
					b.Body().RemoveBlock(nb)
					changed = true
				}
			}
		}
		if changed {
			if err := os.WriteFile(f, file.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// InitE prepares the working directory of opts. With the test provider it
// runs `get` (module installation only): `init` would ask a registry about
// the overridden provider. With the real provider it runs `init`.
func (h *Harness) InitE(tb testing.TB, opts *terraform.Options) (string, error) {
	tb.Helper()
	if h.RealProvider {
		return terraform.InitE(tb, opts)
	}
	return terraform.GetE(tb, opts)
}

// PlanE prepares dir, plans it with vars and returns the parsed plan, or
// the CLI's error (whose text includes the diagnostics).
func (h *Harness) PlanE(tb testing.TB, dir string, vars map[string]any) (*terraform.PlanStruct, error) {
	tb.Helper()
	return h.PlanOptionsE(tb, h.Options(tb, dir, vars))
}

// PlanOptionsE is PlanE with options from Options; the plan file stays at
// opts.PlanFilePath, so the same options can apply it.
func (h *Harness) PlanOptionsE(tb testing.TB, opts *terraform.Options) (*terraform.PlanStruct, error) {
	tb.Helper()
	if out, err := h.InitE(tb, opts); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, out)
	}
	if _, err := terraform.PlanE(tb, opts); err != nil {
		return nil, err
	}
	return terraform.ShowWithStructE(tb, opts)
}

// Plan is PlanE failing tb on error.
func (h *Harness) Plan(tb testing.TB, dir string, vars map[string]any) *terraform.PlanStruct {
	tb.Helper()
	p, err := h.PlanE(tb, dir, vars)
	if err != nil {
		tb.Fatalf("plan %s: %v", dir, err)
	}
	return p
}

// ValidateE prepares dir and runs `validate`.
func (h *Harness) ValidateE(tb testing.TB, dir string) (string, error) {
	tb.Helper()
	opts := h.Options(tb, dir, nil)
	if out, err := h.InitE(tb, opts); err != nil {
		return out, err
	}
	return terraform.ValidateE(tb, opts)
}

// FmtCheckE runs `fmt -check -recursive -diff` on dir, which it does not
// modify.
func (h *Harness) FmtCheckE(tb testing.TB, dir string) (string, error) {
	tb.Helper()
	opts := h.Options(tb, dir, nil)
	return terraform.RunTerraformCommandE(tb, opts, "fmt", "-check", "-recursive", "-diff")
}
