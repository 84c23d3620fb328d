package infra_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"example.com/platform/shared/manifest"
)

// configDirs lists the directories under parent ("infra/modules" or
// "environments") that hold .tf files, relative to the repository root.
func configDirs(t *testing.T, parent string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(h.Root, filepath.FromSlash(parent)))
	if err != nil {
		t.Fatalf("list %s: %v", parent, err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if tf, _ := filepath.Glob(filepath.Join(h.Root, filepath.FromSlash(parent), e.Name(), "*.tf")); len(tf) > 0 {
			out = append(out, filepath.Join(filepath.FromSlash(parent), e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no configurations under %s", parent)
	}
	return out
}

// TestFormat: `fmt -check -recursive` of infra/ and environments/.
func TestFormat(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"infra", "environments"} {
		if out, err := h.FmtCheckE(t, filepath.Join(h.Root, dir)); err != nil {
			t.Fatalf("fmt -check -recursive %s: %v\n%s", dir, err, out)
		}
	}
}

// TestValidate: `validate` of every module and environment against the
// provider schema.
func TestValidate(t *testing.T) {
	t.Parallel()
	dirs := append(append(configDirs(t, "infra/modules"), configDirs(t, "environments")...), filepath.Join("infra", "bootstrap"))
	for _, rel := range dirs {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			if out, err := h.ValidateE(t, h.CopyRepo(t, rel)); err != nil {
				t.Fatalf("validate %s: %v\n%s", rel, err, out)
			}
		})
	}
}

// TestEnvironments plans each environment root with its terraform.tfvars
// and the repository's real manifests, checks the wiring against the
// manifests, then (test provider only) applies the plan offline so every
// computed value is known and checks the invariants on the result.
func TestEnvironments(t *testing.T) {
	t.Parallel()
	repo, err := manifest.LoadRepo(h.Root)
	if err != nil {
		t.Fatalf("load manifests: %v", err)
	}
	for _, rel := range configDirs(t, "environments") {
		env := filepath.Base(rel)
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			dir := h.CopyRepo(t, rel)
			opts := h.Options(t, dir, nil)
			plan, err := h.PlanOptionsE(t, opts)
			if err != nil {
				t.Fatalf("plan %s: %v", rel, err)
			}
			planned := planResources(plan)
			t.Logf("%s plans %d resources: %s", env, len(planned), countByType(planned))
			if h.RealProvider {
				t.Log("INFRA_REAL_PROVIDER=1: no offline apply; wiring and invariants are checked by the gcp-tagged tests")
				return
			}
			if _, err := terraform.ApplyE(t, opts); err != nil {
				t.Fatalf("offline apply %s: %v", rel, err)
			}
			rs := showState(t, opts)
			checkManifestWiring(t, rs, repo)
			checkInvariants(t, rs, env)
		})
	}
}

var hclFence = regexp.MustCompile("(?s)```(?:hcl|terraform|tf)\\n(.*?)```")

// TestReadmeExamples executes every module README's example: each fenced
// hcl block becomes a root module at the root of a copy of the repository
// (with the module source pointed at the module under test), is planned, applied offline and
// checked for the invariants, so documentation cannot drift.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	for _, rel := range configDirs(t, "infra/modules") {
		name := filepath.Base(rel)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			readme, err := os.ReadFile(filepath.Join(h.Root, rel, "README.md"))
			if err != nil {
				t.Fatalf("module %s has no README: %v", name, err)
			}
			blocks := hclFence.FindAllSubmatch(readme, -1)
			if len(blocks) == 0 {
				t.Fatalf("%s/README.md has no ```hcl example", rel)
			}
			for i, b := range blocks {
				// Examples are written to run from the repository root
				// (paths like ./functions/...): run each in the root of a copy.
				dir := h.CopyRepo(t, ".")
				src, err := pointModuleSources(b[1], filepath.Join(dir, "infra", "modules"), dir)
				if err != nil {
					t.Fatalf("example %d: %v", i+1, err)
				}
				if err := os.WriteFile(filepath.Join(dir, "main.tf"), src, 0o644); err != nil {
					t.Fatal(err)
				}
				opts := h.Options(t, dir, nil)
				plan, err := h.PlanOptionsE(t, opts)
				if err != nil {
					t.Fatalf("README example %d of %s does not plan: %v\n%s", i+1, name, err, src)
				}
				if len(plan.ResourcePlannedValuesMap) == 0 && declaresResources(t, rel) {
					t.Errorf("README example %d of %s plans no resources", i+1, name)
				}
				if h.RealProvider {
					continue
				}
				if _, err := terraform.ApplyE(t, opts); err != nil {
					t.Fatalf("offline apply of README example %d of %s: %v", i+1, name, err)
				}
				checkInvariants(t, showState(t, opts), "")
			}
		})
	}
}

// pointModuleSources rewrites the source of every module block whose
// source names one of our modules (".../modules/<name>") to its relative
// path from dir, so an example written for any location runs.
func pointModuleSources(src []byte, modules, dir string) ([]byte, error) {
	f, diags := hclwrite.ParseConfig(src, "README.md", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	for _, b := range f.Body().Blocks() {
		if b.Type() != "module" {
			continue
		}
		attr := b.Body().GetAttribute("source")
		if attr == nil {
			continue
		}
		source := strings.Trim(strings.TrimSpace(string(attr.Expr().BuildTokens(nil).Bytes())), `"`)
		name := filepath.Base(source)
		if _, err := os.Stat(filepath.Join(modules, name)); err != nil {
			continue
		}
		relPath, err := filepath.Rel(dir, filepath.Join(modules, name))
		if err != nil {
			return nil, err
		}
		relPath = filepath.ToSlash(relPath)
		if !strings.HasPrefix(relPath, "../") {
			relPath = "./" + relPath
		}
		b.Body().SetAttributeValue("source", cty.StringVal(relPath))
	}
	return f.Bytes(), nil
}

// declaresResources reports whether the module at rel declares a resource
// (a module of only data sources and locals plans none).
func declaresResources(t *testing.T, rel string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(h.Root, rel, "*.tf"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?m)^resource "`).Match(data) {
			return true
		}
	}
	return false
}
