package infra_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"

	"example.com/platform/shared/manifest"
	"example.com/platform/tests/infra"
)

// TestBootstrap plans and applies offline the bootstrap root
// (infra/bootstrap) with each environment's tfvars and checks what the
// pipeline relies on: the invariants (one ci build per environment as the
// account without deploy rights, deploy and apply as the deployer, approval
// only before applying a saved plan, state readable by the deployer only),
// a secret container for every manifest secret, and promotion gating from
// the previous environment.
func TestBootstrap(t *testing.T) {
	t.Parallel()
	repo, err := manifest.LoadRepo(h.Root)
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for _, m := range repo.Functions {
		for _, s := range m.SecretEnv {
			secrets = append(secrets, s.Secret)
		}
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			dir := h.CopyRepo(t, "infra/bootstrap")
			opts := h.Options(t, dir, nil)
			opts.VarFiles = []string{env + ".tfvars"}
			if _, err := h.PlanOptionsE(t, opts); err != nil {
				t.Fatalf("plan infra/bootstrap with %s.tfvars: %v", env, err)
			}
			if h.RealProvider {
				return
			}
			if _, err := terraform.ApplyE(t, opts); err != nil {
				t.Fatalf("offline apply: %v", err)
			}
			rs := showState(t, opts)
			checkInvariants(t, rs, env)
			got := map[string]bool{}
			for _, s := range ofType(rs, "google_secret_manager_secret") {
				got[s.str("secret_id")] = true
			}
			for _, s := range secrets {
				if !got[s] {
					t.Errorf("no secret container for %s (a manifest's secret_env)", s)
				}
			}
			var ci, apply *resource
			for i, tr := range ofType(rs, "google_cloudbuild_trigger") {
				r := ofType(rs, "google_cloudbuild_trigger")[i]
				switch {
				case strings.HasSuffix(tr.str("name"), "-ci"):
					ci = &r
				case strings.HasSuffix(tr.str("name"), "-apply"):
					apply = &r
				}
			}
			if ci == nil {
				t.Fatal("no ci trigger")
			}
			previous, _ := get(ci.Values, "substitutions", "_PREVIOUS_PROMOTIONS").(string)
			if (env == "dev") != (previous == "") {
				t.Errorf("%s ci trigger _PREVIOUS_PROMOTIONS = %q: only dev deploys without a passed previous environment", env, previous)
			}
			branch, tag := ci.str("github", 0, "push", 0, "branch"), ci.str("github", 0, "push", 0, "tag")
			if env == "dev" && (branch != "^main$" || tag != "") || env != "dev" && (branch != "" || tag == "") {
				t.Errorf("%s ci trigger branch %q tag %q: dev deploys main, staging and prod are promoted by tags", env, branch, tag)
			}
			if (env == "prod") != (apply != nil) {
				t.Errorf("%s: apply trigger present = %v, want only in prod", env, apply != nil)
			}
		})
	}
}

// TestBootstrapChecksCatchBrokenPipeline proves the pipeline invariants can
// fail, on the applied prod bootstrap.
func TestBootstrapChecksCatchBrokenPipeline(t *testing.T) {
	t.Parallel()
	if h.RealProvider {
		t.Skip("needs an offline apply with the test provider")
	}
	dir := h.CopyRepo(t, "infra/bootstrap")
	opts := h.Options(t, dir, nil)
	opts.VarFiles = []string{"prod.tfvars"}
	if _, err := h.PlanOptionsE(t, opts); err != nil {
		t.Fatal(err)
	}
	terraform.Apply(t, opts)
	base := showState(t, opts)
	check := func(rs []resource) []string {
		var r recorder
		checkInvariants(&r, rs, "prod")
		return r.errs
	}
	if errs := check(base); len(errs) > 0 {
		t.Fatalf("prod bootstrap does not pass before mutation: %v", errs)
	}
	trigger := func(rs []resource, suffix string) *resource {
		for i := range rs {
			if rs[i].Type == "google_cloudbuild_trigger" && strings.HasSuffix(rs[i].str("name"), suffix) {
				return &rs[i]
			}
		}
		t.Fatalf("no trigger *%s", suffix)
		return nil
	}
	mutations := []struct {
		name, want string
		mutate     func(rs []resource) []resource
	}{
		{"tests as the deployer", "want the ci-runner account", func(rs []resource) []resource {
			ci := trigger(rs, "-ci")
			ci.Values["service_account"] = strings.Replace(ci.str("service_account"), "ci-runner@", "deployer@", 1)
			return rs
		}},
		{"a trigger per function", "every commit must build", func(rs []resource) []resource {
			trigger(rs, "-ci").Values["included_files"] = []any{"functions/payment/**", "shared/**"}
			return rs
		}},
		{"approval before the plan", "waits for approval before any plan exists", func(rs []resource) []resource {
			trigger(rs, "-deploy").Values["approval_config"] = []any{map[string]any{"approval_required": true}}
			return rs
		}},
		{"apply without approval", "must wait for approval", func(rs []resource) []resource {
			trigger(rs, "-apply").Values["approval_config"] = []any{map[string]any{"approval_required": false}}
			return rs
		}},
		{"deploy applies in prod", "the deploy build must only plan", func(rs []resource) []resource {
			trigger(rs, "-deploy").Values["substitutions"].(map[string]any)["_APPLY"] = "true"
			return rs
		}},
		{"ci account with deploy rights", "it must have no deploy rights", func(rs []resource) []resource {
			first(t, rs, "google_project_iam_member", "google_project_iam_member.ci[").Values["role"] = "roles/run.admin"
			return rs
		}},
		{"ci account reads the state", "read the state and saved plans", func(rs []resource) []resource {
			b := first(t, rs, "google_storage_bucket_iam_member", "deployer_state")
			b.Values["member"] = strings.Replace(b.str("member"), "deployer@", "ci-runner@", 1)
			return rs
		}},
		{"no live object expiry", "no lifecycle rule deleting objects by age", func(rs []resource) []resource {
			for i := range rs {
				if rs[i].Type == "google_storage_bucket" && strings.HasSuffix(rs[i].str("name"), "-function-sources") {
					rs[i].Values["lifecycle_rule"] = []any{}
				}
			}
			return rs
		}},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			errs := check(m.mutate(clone(t, base)))
			if !strings.Contains(strings.Join(errs, "\n"), m.want) {
				t.Errorf("after %q the checks report %v, want a complaint containing %q", m.name, errs, m.want)
			}
		})
	}
}

var schemaVersion = regexp.MustCompile(`google-provider-([0-9.]+)-schema`)
var versionConstraint = regexp.MustCompile(`(?m)^\s*version\s*=\s*"([^"]*)"`)

// TestProviderPins: root modules (environments/*, infra/bootstrap) pin
// exactly the provider version whose schema the checks serve, so every
// build resolves the provider the tests checked; reusable modules keep a
// range; the lock file is not ignored, so the roots' lock files are
// committed.
func TestProviderPins(t *testing.T) {
	t.Parallel()
	m := schemaVersion.FindStringSubmatch(infra.SchemaFile)
	if m == nil {
		t.Fatalf("no version in %s", infra.SchemaFile)
	}
	want := m[1]
	roots := append(configDirs(t, "environments"), filepath.Join("infra", "bootstrap"))
	for _, rel := range roots {
		data, err := os.ReadFile(filepath.Join(h.Root, rel, "versions.tf"))
		if err != nil {
			t.Fatal(err)
		}
		got := versionConstraint.FindAllStringSubmatch(string(data), -1)
		if len(got) != 1 || got[0][1] != want {
			t.Errorf("%s/versions.tf pins %v, want exactly %q (the schema the checks serve)", rel, got, want)
		}
	}
	for _, rel := range configDirs(t, "infra/modules") {
		data, err := os.ReadFile(filepath.Join(h.Root, rel, "versions.tf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range versionConstraint.FindAllStringSubmatch(string(data), -1) {
			if !strings.Contains(g[1], ">=") || !strings.Contains(g[1], "<") || !strings.Contains(g[1], strings.SplitN(want, ".", 2)[0]+".") {
				t.Errorf("%s pins %q: a reusable module keeps a range that includes %s", rel, g[1], want)
			}
		}
	}
	ignore, err := os.ReadFile(filepath.Join(h.Root, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(strings.Split(string(ignore), "\n"), ".terraform.lock.hcl") {
		t.Error(".gitignore ignores .terraform.lock.hcl: the roots' lock files must be committed")
	}
}

var repoPath = regexp.MustCompile(`\b((?:docs|infra|environments|tools|functions|tests)/[A-Za-z0-9_./<>*-]*[A-Za-z0-9_>])`)

// pendingPaths are named by the pipeline before they exist: the migrate
// tool is the Go side's part of the migration contract
// (docs/infrastructure.md, "Database: roles, migrations, connections"); the ci build skips its image
// until it exists.
var pendingPaths = map[string]bool{"tools/cmd/migrate": true}

// TestReferencedFilesExist: every repository path that a comment or script
// of the Terraform and the pipeline names exists (placeholders such as
// <env> and globs are resolved by pattern).
func TestReferencedFilesExist(t *testing.T) {
	t.Parallel()
	var files []string
	for _, pattern := range []string{"infra/*/*/*.tf", "infra/*/*.tf", "environments/*/*.tf", "infra/pipeline/*", "cloudbuild.yaml"} {
		m, _ := filepath.Glob(filepath.Join(h.Root, pattern))
		files = append(files, m...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range repoPath.FindAllStringSubmatch(string(data), -1) {
			p := m[1]
			if strings.Contains(p, "${") || strings.HasSuffix(p, "/") || pendingPaths[p] {
				continue
			}
			glob := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(p, "*")
			if strings.HasSuffix(glob, "/**") {
				glob = strings.TrimSuffix(glob, "/**")
			}
			if hits, _ := filepath.Glob(filepath.Join(h.Root, glob)); len(hits) == 0 {
				rel, _ := filepath.Rel(h.Root, f)
				t.Errorf("%s names %s, which does not exist", rel, p)
			}
		}
	}
}

var logicBlock = regexp.MustCompile(`(?m)^(resource|data|locals)\b`)

// TestRootsAreThin: the environment roots live at the top level (not under
// infra/) and, like the bootstrap root, hold module calls, variables,
// outputs and tfvars only: no resources, data sources or locals.
func TestRootsAreThin(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(h.Root, "infra", "environments")); err == nil {
		t.Error("infra/environments exists: environments live at the top level")
	}
	roots := append(configDirs(t, "environments"), filepath.Join("infra", "bootstrap"))
	for _, rel := range roots {
		files, _ := filepath.Glob(filepath.Join(h.Root, rel, "*.tf"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if m := logicBlock.FindString(string(data)); m != "" {
				t.Errorf("%s/%s declares a %s block: roots hold module calls and values only", rel, filepath.Base(f), m)
			}
		}
	}
}
