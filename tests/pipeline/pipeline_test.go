// Package pipeline_test checks the Cloud Build pipeline offline: the build
// configurations (cloudbuild.yaml, infra/pipeline/deploy.yaml and
// apply.yaml) parse and keep their order and separation of rights, and the
// scripts of infra/pipeline behave, run against fake gcloud and git
// commands.
package pipeline_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var root = filepath.Join("..", "..")

type step struct {
	ID     string   `yaml:"id"`
	Name   string   `yaml:"name"`
	Dir    string   `yaml:"dir"`
	Args   []string `yaml:"args"`
	Script string   `yaml:"script"`
	Env    []string `yaml:"env"`
}

type build struct {
	Substitutions map[string]string `yaml:"substitutions"`
	Options       struct {
		Logging string `yaml:"logging"`
	} `yaml:"options"`
	Steps []step `yaml:"steps"`
}

func load(t *testing.T, rel string) build {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	var b build
	if err := yaml.Unmarshal(data, &b); err != nil {
		t.Fatalf("%s is not valid YAML: %v", rel, err)
	}
	if len(b.Steps) == 0 {
		t.Fatalf("%s has no steps", rel)
	}
	// Builds that run as a user-specified service account need this.
	if b.Options.Logging != "CLOUD_LOGGING_ONLY" {
		t.Errorf("%s options.logging = %q, want CLOUD_LOGGING_ONLY", rel, b.Options.Logging)
	}
	return b
}

// text is what a step runs: its args and its script.
func (s step) text() string { return strings.Join(s.Args, " ") + "\n" + s.Script }

func (s step) terraform() bool { return strings.Contains(s.Name, "terraform") }

func ids(b build) []string {
	var out []string
	for _, s := range b.Steps {
		out = append(out, s.ID)
	}
	return out
}

func index(t *testing.T, b build, id string) int {
	t.Helper()
	i := slices.Index(ids(b), id)
	if i < 0 {
		t.Fatalf("no step %q in %v", id, ids(b))
	}
	return i
}

// TestCIBuildHasNoDeployStep: the ci build (the ci-runner account, no deploy
// rights) downloads, tests, packages and uploads, in that order, after the
// promotion gate, and never plans, applies or touches the state.
func TestCIBuildHasNoDeployStep(t *testing.T) {
	b := load(t, "cloudbuild.yaml")
	order := []string{"promotion-gate", "download", "test", "package", "upload"}
	prev := -1
	for _, id := range order {
		i := index(t, b, id)
		if i < prev {
			t.Errorf("step %s runs before %s; want the order %v", id, order[slices.Index(order, id)-1], order)
		}
		prev = i
	}
	for _, s := range b.Steps {
		if s.terraform() || strings.Contains(s.text(), "terraform ") || strings.Contains(s.text(), "_TF_STATE_BUCKET") || strings.Contains(s.text(), "gcloud run jobs") {
			t.Errorf("ci step %s plans, applies, migrates or reads the state: only the deployer's builds may", s.ID)
		}
	}
	if !strings.Contains(b.Steps[index(t, b, "download")].Script, "go mod download") {
		t.Error("the download step does not run go mod download")
	}
}

// TestDeployBuildAppliesTheSavedPlan: the deploy build checks out the ci
// build's commit, serializes, checks secrets, plans to a file, saves it, and
// applies exactly that file (only when _APPLY is true; prod's apply build
// does it after approval), migrating first.
func TestDeployBuildAppliesTheSavedPlan(t *testing.T) {
	b := load(t, "infra/pipeline/deploy.yaml")
	order := []string{"checkout", "serialize", "sources", "check-secrets", "init", "plan", "save-plan", "migrate-before", "apply", "migrate-after", "record-promotion"}
	if got := ids(b); !slices.Equal(got, order) {
		t.Errorf("deploy steps %v, want %v", got, order)
	}
	plan := b.Steps[index(t, b, "plan")]
	if !strings.Contains(plan.Script, "plan -input=false") || !strings.Contains(plan.Script, "-out=tfplan") || !strings.Contains(plan.Script, "show -no-color tfplan") {
		t.Errorf("plan step does not save and show the plan: %s", plan.Script)
	}
	apply := b.Steps[index(t, b, "apply")]
	if !strings.Contains(apply.Script, "apply -input=false -lock-timeout=600s tfplan") || !strings.Contains(apply.Script, `"${_APPLY}" != "true"`) {
		t.Errorf("apply step must apply the saved tfplan, and only when _APPLY is true: %s", apply.Script)
	}
	for _, id := range []string{"migrate-before", "migrate-after", "record-promotion"} {
		if !strings.Contains(b.Steps[index(t, b, id)].Script, `"${_APPLY}" != "true"`) {
			t.Errorf("step %s runs even when this build only plans", id)
		}
	}
	if !strings.Contains(b.Steps[index(t, b, "save-plan")].Script, "gs://${_TF_STATE_BUCKET}/plans/") {
		t.Error("the saved plan must go to the state bucket, which only the deployer reads")
	}
}

// TestApplyBuildAppliesTheApprovedPlan: the apply build (held for approval
// by its trigger) never plans: it fetches the plan of _PLAN_BUILD_ID and
// applies that file.
func TestApplyBuildAppliesTheApprovedPlan(t *testing.T) {
	b := load(t, "infra/pipeline/apply.yaml")
	if ids(b)[0] != "checkout" || ids(b)[1] != "serialize" {
		t.Errorf("apply build starts with %v, want checkout, serialize", ids(b)[:2])
	}
	if i, j := index(t, b, "fetch-plan"), index(t, b, "apply"); i > j {
		t.Error("apply runs before the plan is fetched")
	}
	if !strings.Contains(b.Steps[index(t, b, "fetch-plan")].Script, "plans/${_ENV}/${_PLAN_BUILD_ID}/tfplan") {
		t.Error("fetch-plan does not fetch the plan of _PLAN_BUILD_ID")
	}
	if got := b.Steps[index(t, b, "apply")].Args; !slices.Equal(got, []string{"apply", "-input=false", "-lock-timeout=600s", "tfplan"}) {
		t.Errorf("apply args %v, want apply of the saved tfplan", got)
	}
	if index(t, b, "migrate-before") > index(t, b, "apply") {
		t.Error("migrations must run before the functions deploy")
	}
	for _, s := range b.Steps {
		if strings.Contains(s.text(), "terraform plan") || slices.Contains(s.Args, "plan") {
			t.Errorf("apply build step %s plans again: it must apply the approved plan", s.ID)
		}
	}
}

// TestScriptsExist: every infra/pipeline script a build runs exists and is
// valid bash.
func TestScriptsExist(t *testing.T) {
	for _, rel := range []string{"cloudbuild.yaml", "infra/pipeline/deploy.yaml", "infra/pipeline/apply.yaml"} {
		for _, s := range load(t, rel).Steps {
			for _, f := range strings.Fields(s.Script) {
				if !strings.HasPrefix(f, "infra/pipeline/") || !strings.HasSuffix(f, ".sh") {
					continue
				}
				if out, err := exec.Command("bash", "-n", filepath.Join(root, f)).CombinedOutput(); err != nil {
					t.Errorf("%s step %s runs %s: %v\n%s", rel, s.ID, f, err, out)
				}
			}
		}
	}
}
