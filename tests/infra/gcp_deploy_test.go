//go:build gcp

package infra_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/random"
	"github.com/gruntwork-io/terratest/modules/retry"
	"github.com/gruntwork-io/terratest/modules/terraform"
)

// TestDeployDevLive deploys the dev environment to a real project, pushes
// an order through the orders API and waits until the order has shipped:
// orders API -> order.created -> payment -> payment.processed -> shipment.
// It destroys the environment at the end (dev has no deletion protection).
//
// The project must be bootstrapped first (infra/bootstrap with a tfvars for
// it: the source bucket and secret containers exist) and each secret must
// have a version (docs/infrastructure.md, "Bootstrap"). Needs the real
// provider, credentials, gcloud on PATH, the migrate image if the schema is
// not there yet, and:
//
//	INFRA_REAL_PROVIDER=1 GOOGLE_CLOUD_PROJECT=<sandbox> \
//	INFRA_LIVE_INVOKER=user:me@example.com \
//	    go test -tags gcp -timeout 90m -run TestDeployDevLive ./infra/
func TestDeployDevLive(t *testing.T) {
	project := os.Getenv("GOOGLE_CLOUD_PROJECT")
	invoker := os.Getenv("INFRA_LIVE_INVOKER")
	if project == "" || invoker == "" {
		t.Skip("set GOOGLE_CLOUD_PROJECT (a bootstrapped sandbox project) and INFRA_LIVE_INVOKER (the IAM member of your credentials) " +
			"with INFRA_REAL_PROVIDER=1 to deploy dev and push an order through it: " +
			"INFRA_REAL_PROVIDER=1 GOOGLE_CLOUD_PROJECT=<sandbox> INFRA_LIVE_INVOKER=user:<you> go test -tags gcp -timeout 90m -run TestDeployDevLive ./infra/")
	}
	if !h.RealProvider {
		t.Fatal("apply-level tests need the real provider: set INFRA_REAL_PROVIDER=1")
	}
	bucket := project + "-function-sources"
	dir := h.CopyRepo(t, ".")
	env := filepath.Join(dir, "environments", "dev")

	// Package and upload as the ci build does.
	pkg := exec.Command("go", "run", "./cmd/package", "-root", h.Root, "-out", filepath.Join(dir, "dist"))
	pkg.Dir = filepath.Join(h.Root, "tools")
	if out, err := pkg.CombinedOutput(); err != nil {
		t.Fatalf("package: %v\n%s", err, out)
	}
	up := exec.Command("bash", filepath.Join(h.Root, "infra", "pipeline", "upload.sh"))
	up.Dir = dir
	up.Env = append(os.Environ(), "SOURCE_BUCKET="+bucket, "COMMIT_SHA=live-"+strings.ToLower(random.UniqueId()),
		"OUT="+filepath.Join(env, "sources.auto.tfvars.json"))
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}

	opts := h.Options(t, env, map[string]any{
		"project_id":    project,
		"source_bucket": bucket,
		"orders_api":    map[string]any{"invokers": map[string]any{"live": invoker}},
		"alerting":      map[string]any{},
	})
	opts.PlanFilePath = ""
	defer terraform.Destroy(t, opts)
	terraform.InitAndApply(t, opts)

	var services map[string]struct {
		URI string `json:"uri"`
	}
	terraform.OutputStruct(t, opts, "http_services", &services)
	uri := services["ordersapi"].URI
	if uri == "" {
		t.Fatalf("no ordersapi uri in %v", services)
	}
	token := identityToken(t, uri)

	body, _ := json.Marshal(map[string]any{
		"customer_id": "live-" + strings.ToLower(random.UniqueId()),
		"currency":    "EUR",
		"items":       []map[string]any{{"sku": "SKU-1", "quantity": 1, "unit_price": 1000}},
	})
	var created struct {
		ID string `json:"id"`
	}
	// A fresh service may answer 5xx until its first instance is ready.
	retry.DoWithRetry(t, "create order", 30, 10*time.Second, func() (string, error) {
		req, _ := http.NewRequest(http.MethodPost, uri+"/v1/orders", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "live-"+strings.ToLower(random.UniqueId()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return "", fmt.Errorf("POST /v1/orders: %s", resp.Status)
		}
		return "", json.NewDecoder(resp.Body).Decode(&created)
	})
	retry.DoWithRetry(t, "order shipped", 60, 10*time.Second, func() (string, error) {
		req, _ := http.NewRequest(http.MethodGet, uri+"/v1/orders/"+created.ID, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var o struct {
			Status string `json:"status"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
			return "", err
		}
		if o.Status != "shipped" {
			return "", fmt.Errorf("order %s is %q", created.ID, o.Status)
		}
		return o.Status, nil
	})
}

// identityToken is an ID token of the caller's credentials for audience.
func identityToken(t *testing.T, audience string) string {
	t.Helper()
	args := []string{"auth", "print-identity-token"}
	if !strings.HasPrefix(os.Getenv("INFRA_LIVE_INVOKER"), "user:") {
		args = append(args, "--audiences="+audience)
	}
	out, err := exec.Command("gcloud", args...).Output()
	if err != nil {
		t.Fatalf("gcloud auth print-identity-token: %v", err)
	}
	return strings.TrimSpace(string(out))
}
