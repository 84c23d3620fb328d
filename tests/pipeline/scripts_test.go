package pipeline_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeTool is a stand-in for gcloud or git: it appends its arguments to a
// log and answers by the first rule whose glob matches them.
const fakeTool = `#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$FAKE_LOG"
[ -t 0 ] || cat >/dev/null
while IFS=$'\t' read -r pat code out; do
  [ -n "$pat" ] || continue
  if [[ "$(basename "$0") $*" == $pat ]]; then
    [ -n "$out" ] && printf '%s\n' "$out"
    exit "$code"
  fi
done < "$FAKE_RULES"
exit 0
`

type rule struct {
	glob string // matched against "<tool> <args>"
	code int
	out  string
}

type run struct {
	code   int
	stdout string
	stderr string
	calls  []string
}

// runScript runs infra/pipeline/<name> in dir with fake gcloud and git on
// PATH, answering by rules.
func runScript(t *testing.T, dir, name string, env map[string]string, rules []rule, args ...string) run {
	t.Helper()
	bin := t.TempDir()
	for _, tool := range []string{"gcloud", "git"} {
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(fakeTool), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	for _, r := range rules {
		lines = append(lines, r.glob+"\t"+itoa(r.code)+"\t"+r.out)
	}
	rulesFile := filepath.Join(bin, "rules")
	logFile := filepath.Join(bin, "log")
	if err := os.WriteFile(rulesFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join(root, "infra", "pipeline", name))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "FAKE_LOG=" + logFile, "FAKE_RULES=" + rulesFile, "HOME=" + dir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	r := run{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(logFile); err == nil {
		r.calls = strings.Split(strings.TrimSpace(string(data)), "\n")
	}
	return r
}

func itoa(n int) string { return strconv.Itoa(n) }

func called(r run, sub string) bool {
	for _, c := range r.calls {
		if strings.Contains(c, sub) {
			return true
		}
	}
	return false
}

const commit = "0123456789abcdef0123456789abcdef01234567"

func TestPromotionGate(t *testing.T) {
	t.Run("dev has no gate", func(t *testing.T) {
		r := runScript(t, t.TempDir(), "promotion-gate.sh", map[string]string{"COMMIT_SHA": commit}, nil)
		if r.code != 0 || called(r, "gcloud") {
			t.Errorf("exit %d, calls %v: want success without looking", r.code, r.calls)
		}
	})
	t.Run("commit not promoted", func(t *testing.T) {
		r := runScript(t, t.TempDir(), "promotion-gate.sh", map[string]string{"COMMIT_SHA": commit, "PREVIOUS_PROMOTIONS": "example-dev-function-sources"},
			[]rule{{"gcloud storage objects describe *", 1, ""}})
		if r.code == 0 || !strings.Contains(r.stderr, "has not passed the previous environment") || !called(r, "gs://example-dev-function-sources/promotions/"+commit) {
			t.Errorf("exit %d, stderr %q, calls %v: want a refusal naming the record", r.code, r.stderr, r.calls)
		}
	})
	t.Run("commit promoted", func(t *testing.T) {
		r := runScript(t, t.TempDir(), "promotion-gate.sh", map[string]string{"COMMIT_SHA": commit, "PREVIOUS_PROMOTIONS": "example-dev-function-sources"}, nil)
		if r.code != 0 {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
}

func TestUploadIsContentAddressed(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for name, body := range map[string]string{"payment": "payment archive", "shipment": "shipment archive"} {
		if err := os.WriteFile(filepath.Join(dir, "dist", name+".zip"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256([]byte(body))
		sums[name] = name + "-" + hex.EncodeToString(s[:]) + ".zip"
	}
	r := runScript(t, dir, "upload.sh", map[string]string{"SOURCE_BUCKET": "b", "COMMIT_SHA": commit},
		[]rule{{"gcloud storage objects describe gs://b/" + sums["payment"], 0, ""}, {"gcloud storage objects describe *", 1, ""}})
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if called(r, "cp --no-clobber dist/payment.zip") {
		t.Error("uploaded payment again although its archive exists")
	}
	if !called(r, "cp --no-clobber dist/shipment.zip gs://b/"+sums["shipment"]) {
		t.Errorf("did not upload shipment as %s: %v", sums["shipment"], r.calls)
	}
	if !called(r, "gs://b/builds/"+commit+"/sources.auto.tfvars.json") {
		t.Errorf("did not store the sources for the deploy build: %v", r.calls)
	}
	var got struct {
		FunctionSources map[string]string `json:"function_sources"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "sources.auto.tfvars.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("sources.auto.tfvars.json is not JSON: %v\n%s", err, data)
	}
	if got.FunctionSources["payment"] != sums["payment"] || got.FunctionSources["shipment"] != sums["shipment"] {
		t.Errorf("function_sources = %v, want %v", got.FunctionSources, sums)
	}
}

func TestCheckSecretsNamesTheManualStep(t *testing.T) {
	repo, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PROJECT_ID": "example-dev", "ROOT": repo}
	r := runScript(t, t.TempDir(), "check-secrets.sh", env, []rule{{"gcloud secrets versions list *", 0, ""}})
	if r.code == 0 {
		t.Fatal("deploy allowed with a secret that has no version")
	}
	if !strings.Contains(r.stderr, "gcloud secrets versions add payment-gateway-api-key --project=example-dev --data-file=-") {
		t.Errorf("the error does not give the command to run: %q", r.stderr)
	}
	r = runScript(t, t.TempDir(), "check-secrets.sh", env, []rule{{"gcloud secrets versions list payment-gateway-api-key *", 0, "projects/1/secrets/payment-gateway-api-key/versions/1"}})
	if r.code != 0 {
		t.Errorf("exit %d with every secret versioned: %s", r.code, r.stderr)
	}
}

func TestMigrateRunsBeforeAndAfterTheApply(t *testing.T) {
	env := map[string]string{"PROJECT_ID": "p", "REGION": "europe-west1", "JOB": "platform-dev-migrate", "IMAGE": "europe-west1-docker.pkg.dev/p/pipeline/migrate:" + commit}
	t.Run("job exists", func(t *testing.T) {
		dir := t.TempDir()
		r := runScript(t, dir, "migrate.sh", env, nil, "before")
		if r.code != 0 || !called(r, "run jobs update platform-dev-migrate --project=p --region=europe-west1 --image="+env["IMAGE"]) || !called(r, "run jobs execute platform-dev-migrate --project=p --region=europe-west1 --wait") {
			t.Errorf("exit %d, calls %v: want the image set and the job executed, waiting", r.code, r.calls)
		}
		// Again after the apply, which set the job's function users: a
		// function added in this release gets its grants now.
		r = runScript(t, dir, "migrate.sh", env, nil, "after")
		if r.code != 0 || !called(r, "run jobs execute platform-dev-migrate --project=p --region=europe-west1 --wait") {
			t.Errorf("exit %d, calls %v: want the job run again after the apply", r.code, r.calls)
		}
	})
	t.Run("first deploy", func(t *testing.T) {
		dir := t.TempDir()
		r := runScript(t, dir, "migrate.sh", env, []rule{{"gcloud run jobs describe *", 1, ""}}, "before")
		if r.code != 0 || called(r, "run jobs execute") {
			t.Errorf("exit %d, calls %v: want no execution before the job exists", r.code, r.calls)
		}
		r = runScript(t, dir, "migrate.sh", env, nil, "after")
		if !called(r, "run jobs execute platform-dev-migrate") {
			t.Errorf("did not migrate after the first apply: %v", r.calls)
		}
	})
	t.Run("no migrate image", func(t *testing.T) {
		r := runScript(t, t.TempDir(), "migrate.sh", env, []rule{{"gcloud artifacts docker images describe *", 1, ""}}, "before")
		if r.code != 0 || called(r, "run jobs execute") || !strings.Contains(r.stderr, "migrations skipped") {
			t.Errorf("exit %d, stderr %q, calls %v: want a warning and no execution", r.code, r.stderr, r.calls)
		}
	})
	t.Run("failed migration fails the build", func(t *testing.T) {
		r := runScript(t, t.TempDir(), "migrate.sh", env, []rule{{"gcloud run jobs execute *", 1, ""}}, "before")
		if r.code == 0 {
			t.Error("a failed migration job did not fail the step")
		}
	})
}

func TestSerialize(t *testing.T) {
	env := map[string]string{"ENV": "prod", "BUILD_ID": "b2", "PROJECT_ID": "p", "SERIALIZE_INTERVAL": "0", "SERIALIZE_TIMEOUT": "0"}
	r := runScript(t, t.TempDir(), "serialize.sh", env, []rule{{"gcloud builds describe *", 0, "2026-01-01T00:00:00Z"}, {"gcloud builds list *", 0, ""}})
	if r.code != 0 {
		t.Errorf("exit %d with no older build: %s", r.code, r.stderr)
	}
	if !called(r, "tags=prod-deploy OR tags=prod-apply") {
		t.Errorf("does not look for the environment's deploy and apply builds: %v", r.calls)
	}
	r = runScript(t, t.TempDir(), "serialize.sh", env, []rule{{"gcloud builds describe *", 0, "2026-01-01T00:00:00Z"}, {"gcloud builds list *", 0, "b1"}})
	if r.code == 0 || !strings.Contains(r.stderr, "b1") {
		t.Errorf("exit %d, stderr %q: want a failure naming the older build after the timeout", r.code, r.stderr)
	}
}

func TestCheckoutRefusesAnythingButTheCommit(t *testing.T) {
	r := runScript(t, t.TempDir(), "checkout.sh", map[string]string{"COMMIT": "main"}, nil)
	if r.code == 0 || called(r, "git") {
		t.Errorf("exit %d, calls %v: want a refusal of a branch name", r.code, r.calls)
	}
	r = runScript(t, t.TempDir(), "checkout.sh", map[string]string{"COMMIT": commit}, []rule{{"git rev-parse HEAD", 0, commit}})
	if r.code != 0 || !called(r, "git checkout --quiet --detach "+commit) {
		t.Errorf("exit %d, calls %v", r.code, r.calls)
	}
	r = runScript(t, t.TempDir(), "checkout.sh", map[string]string{"COMMIT": commit}, []rule{{"git rev-parse HEAD", 0, strings.Repeat("f", 40)}})
	if r.code == 0 {
		t.Error("accepted a checkout at another commit")
	}
}

func TestRecordPromotion(t *testing.T) {
	r := runScript(t, t.TempDir(), "record-promotion.sh", map[string]string{"SOURCE_BUCKET": "example-dev-function-sources", "COMMIT": commit, "BUILD_ID": "b1", "ENV": "dev"}, nil)
	if r.code != 0 || !called(r, "gcloud storage cp - gs://example-dev-function-sources/promotions/"+commit) {
		t.Errorf("exit %d, calls %v", r.code, r.calls)
	}
}
