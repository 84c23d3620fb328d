package infra_test

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// TestValidationRejectsBadInputs takes each module's README example, which
// plans (TestReadmeExamples), replaces one argument of the module call with
// a bad value and asserts that the plan fails with the variable's intended
// validation or precondition message: the checks fire, and say what they
// mean (for the API rules the provider does not check: backups vs log
// retention, Direct VPC names, the connection budget, 60 s alert
// durations, no superuser function users, a reachable HTTP service).
func TestValidationRejectsBadInputs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		module, arg, expr, want string
	}{
		{"topic", "name", `"goog-orders"`, "The name must be a Pub/Sub topic id"},
		{"topic", "labels", `{ owner = "x" }`, `The labels must include "team"`},
		{"topic", "message_retention_duration", `"60s"`, "The message_retention_duration must be whole seconds"},
		{"topic", "publishers", `{ everyone = "allUsers" }`, "The publishers must not include allUsers or allAuthenticatedUsers."},
		{"event-function", "name", `"Bad_Name"`, "The name must be 3-30 lowercase letters"},
		{"event-function", "entry_point", `"payment"`, "The entry_point must be an exported Go identifier"},
		{"event-function", "trigger", `{ dead_letter_topic = "payment.dead", pubsub_service_agent = "service-1@gcp-sa-pubsub.iam.gserviceaccount.com", subscriptions = { "order.created" = { max_delivery_attempts = 5, min_backoff = "10s", max_backoff = "60s", ack_deadline_seconds = 30 } } }`, `The trigger.dead_letter_topic must end in ".dlq"`},
		{"event-function", "trigger", `{ dead_letter_topic = "payment.dlq", pubsub_service_agent = "service-1@gcp-sa-pubsub.iam.gserviceaccount.com", subscriptions = {} }`, "A trigger must consume at least one topic"},
		{"event-function", "ingress", `"ALLOW_INTERNAL_AND_GCLB"`, "A function with a trigger is fed by push: its ingress must be ALLOW_INTERNAL_ONLY"},
		{"event-function", "network", `{ network = "projects/example-dev/global/networks/platform", subnetwork = "projects/example-dev/regions/europe-west1/subnetworks/platform-europe-west1" }`, "must be names such as"},
		{"event-function", "cloudsql", `{ instance_name = "platform-dev", instance_connection_name = "example-dev:europe-west1:platform-dev", database = "platform", database_roles = ["cloudsqlsuperuser"] }`, "must not get cloudsqlsuperuser"},
		{"http-service", "service", `{ service_name = "ordersapi", uri = "https://ordersapi.run.app", ingress = "ALLOW_INTERNAL_ONLY" }`, "no client outside the VPC could reach it"},
		{"http-service", "load_balancer", `null`, "without one it needs ALLOW_ALL"},
		{"http-service", "load_balancer", `{ domains = ["orders.dev.example.com"], rate_limit = { interval_sec = 45 } }`, "Cloud Armor's intervals"},
		{"postgres", "backup", `{ retained_backups = 3 }`, "must be greater than backup.transaction_log_retention_days"},
		{"postgres", "clients", `{ payment = 100, shipment = 20 }`, "more than max_connections 100"},
		{"postgres", "iam_users", `{ oncall = { email = "oncall@example.com", type = "CLOUD_IAM_USER", database_roles = ["cloudsqlsuperuser"] } }`, "No iam_users entry may get cloudsqlsuperuser"},
		{"postgres", "migrations", `{ image = "x", network = "projects/p/global/networks/platform", subnetwork = "platform-europe-west1" }`, "must be names, not resource paths"},
		{"monitoring", "thresholds", `{ duration_seconds = 90 }`, "must be a multiple of 60"},
		{"monitoring", "functions", `{ payment = { team = "payments", service_name = "projects/example-dev/locations/europe-west1/services/payment" } }`, "must be the short Cloud Run service name"},
		{"platform", "database", `{ function_roles = ["cloudsqlsuperuser"] }`, "must not include cloudsqlsuperuser"},
		{"platform", "database", `{ retained_backups = 7 }`, "must be greater than backup.transaction_log_retention_days"},
		{"platform", "database", `{ max_connections = 50 }`, "more than max_connections 50"},
		{"build-triggers", "ref", `{ branch = "^main$", tag = "^v.*$" }`, "Set exactly one of ref.branch and ref.tag"},
		{"build-triggers", "build_events_topic", `"projects/example-prod/topics/builds"`, "Cloud Build publishes to that topic only"},
		{"bootstrap", "secrets", `["payment gateway key"]`, "Each secret id must be"},
		{"http-service", "invokers", `{ everyone = "allAuthenticatedUsers" }`, "The invokers must not include allUsers or allAuthenticatedUsers"},
		{"platform", "env", `"qa"`, "The env must be dev, staging or prod."},
		{"platform", "alerting", `{ thresholds = { error_rate = 0.5 } }`, "The alerting.thresholds keys must be"},
		{"postgres", "private_network", `"default"`, "The private_network must be a network id like"},
		{"postgres", "ssl_mode", `"ALLOW_UNENCRYPTED_AND_ENCRYPTED"`, "unencrypted connections are never allowed"},
		{"analytics", "dataset_id", `"bad-dataset"`, "The dataset_id must be letters, digits or underscores"},
	}
	for _, tc := range cases {
		t.Run(tc.module+"/"+tc.arg, func(t *testing.T) {
			t.Parallel()
			readme, err := os.ReadFile(filepath.Join(h.Root, "infra", "modules", tc.module, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			m := hclFence.FindSubmatch(readme)
			if m == nil {
				t.Fatalf("%s README has no example", tc.module)
			}
			dir := h.CopyRepo(t, ".")
			src, err := pointModuleSources(m[1], filepath.Join(dir, "infra", "modules"), dir)
			if err != nil {
				t.Fatal(err)
			}
			if src, err = setModuleArgument(src, tc.module, tc.arg, tc.expr); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), src, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = h.PlanE(t, dir, nil)
			if err == nil {
				t.Fatalf("plan accepted %s = %s:\n%s", tc.arg, tc.expr, src)
			}
			if got := collapse(err.Error()); !strings.Contains(got, tc.want) {
				t.Fatalf("plan failed without %q:\n%v", tc.want, err)
			}
		})
	}
}

// setModuleArgument sets arg = expr (HCL source) on the first module block
// whose source is the module named module (an example may call other
// modules too, e.g. the service that http-service is given).
func setModuleArgument(src []byte, module, arg, expr string) ([]byte, error) {
	f, diags := hclwrite.ParseConfig(src, "main.tf", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	e, diags := hclwrite.ParseConfig([]byte("x = "+expr+"\n"), "expr.tf", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	tokens := e.Body().GetAttribute("x").Expr().BuildTokens(nil)
	for _, b := range f.Body().Blocks() {
		if b.Type() != "module" {
			continue
		}
		source := b.Body().GetAttribute("source")
		if source == nil || path.Base(strings.Trim(strings.TrimSpace(string(source.Expr().BuildTokens(nil).Bytes())), `"`)) != module {
			continue
		}
		b.Body().SetAttributeRaw(arg, tokens)
		return f.Bytes(), nil
	}
	return nil, fmt.Errorf("no module block with source .../%s: %w", module, os.ErrNotExist)
}
