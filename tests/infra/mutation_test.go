package infra_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"

	"example.com/platform/shared/manifest"
)

// recorder is a reporter that keeps the failures instead of failing.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func clone(t *testing.T, rs []resource) []resource {
	t.Helper()
	data, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	var out []resource
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// first returns the first resource of typ whose address contains sub.
func first(t *testing.T, rs []resource, typ, sub string) *resource {
	t.Helper()
	for i := range rs {
		if rs[i].Type == typ && strings.Contains(rs[i].Address, sub) {
			return &rs[i]
		}
	}
	t.Fatalf("no %s matching %q", typ, sub)
	return nil
}

func without(rs []resource, r *resource) []resource {
	var out []resource
	for i := range rs {
		if rs[i].Address != r.Address {
			out = append(out, rs[i])
		}
	}
	return out
}

// TestChecksCatchBrokenWiring proves the checks can fail: it applies the
// dev environment offline, verifies the result passes, then breaks one
// rule at a time in a copy of the resources and expects the matching
// complaint.
func TestChecksCatchBrokenWiring(t *testing.T) {
	t.Parallel()
	if h.RealProvider {
		t.Skip("needs an offline apply with the test provider")
	}
	repo, err := manifest.LoadRepo(h.Root)
	if err != nil {
		t.Fatal(err)
	}
	dir := h.CopyRepo(t, "environments/dev")
	opts := h.Options(t, dir, nil)
	if _, err := h.PlanOptionsE(t, opts); err != nil {
		t.Fatal(err)
	}
	terraform.Apply(t, opts)
	base := showState(t, opts)
	check := func(rs []resource) []string {
		var r recorder
		checkInvariants(&r, rs, "dev")
		checkManifestWiring(&r, rs, repo)
		return r.errs
	}
	if errs := check(base); len(errs) > 0 {
		t.Fatalf("dev does not pass before mutation: %v", errs)
	}
	mutations := []struct {
		name, want string
		mutate     func(rs []resource) []resource
	}{
		{"service agent not subscriber", "the Pub/Sub service agent is not subscriber", func(rs []resource) []resource {
			return without(rs, first(t, rs, "google_pubsub_subscription_iam_member", ""))
		}},
		{"service agent cannot publish to DLQ", "cannot publish to its dead-letter topic", func(rs []resource) []resource {
			for i := range rs {
				if rs[i].Type == "google_pubsub_topic_iam_member" && isAgent(rs[i].str("member")) {
					rs[i].Values["member"] = "serviceAccount:someone@example-dev.iam.gserviceaccount.com"
				}
			}
			return rs
		}},
		{"no dead-letter policy", "has no dead-letter topic", func(rs []resource) []resource {
			first(t, rs, "google_pubsub_subscription", "payment").Values["dead_letter_policy"] = []any{}
			return rs
		}},
		{"no retry policy", "has no retry_policy", func(rs []resource) []resource {
			first(t, rs, "google_pubsub_subscription", "payment").Values["retry_policy"] = []any{}
			return rs
		}},
		{"wrong delivery attempts", "max_delivery_attempts", func(rs []resource) []resource {
			get(first(t, rs, "google_pubsub_subscription", "payment").Values, "dead_letter_policy", 0).(map[string]any)["max_delivery_attempts"] = 99.0
			return rs
		}},
		{"missing subscription", "is not deployed", func(rs []resource) []resource {
			return without(rs, first(t, rs, "google_pubsub_subscription", "analytics"))
		}},
		{"public ingress", "want ALLOW_INTERNAL_ONLY", func(rs []resource) []resource {
			get(first(t, rs, "google_cloudfunctions2_function", "payment").Values, "service_config", 0).(map[string]any)["ingress_settings"] = "ALLOW_ALL"
			return rs
		}},
		{"shared runtime account", "share the runtime service account", func(rs []resource) []resource {
			a := first(t, rs, "google_cloudfunctions2_function", "payment")
			b := first(t, rs, "google_cloudfunctions2_function", "shipment")
			get(b.Values, "service_config", 0).(map[string]any)["service_account_email"] = a.str("service_config", 0, "service_account_email")
			return rs
		}},
		{"invoker on another function", "not only its own function", func(rs []resource) []resource {
			other := first(t, rs, "google_cloudfunctions2_function", "shipment").str("service_config", 0, "service")
			first(t, rs, "google_cloud_run_v2_service_iam_member", "payment").Values["name"] = other
			return rs
		}},
		{"allUsers", "grants a public principal", func(rs []resource) []resource {
			first(t, rs, "google_pubsub_topic_iam_member", "").Values["member"] = "allUsers"
			return rs
		}},
		{"missing team label", "has no team label", func(rs []resource) []resource {
			delete(first(t, rs, "google_pubsub_topic", "").Values["labels"].(map[string]any), "team")
			return rs
		}},
		{"public Cloud SQL", "has a public IP", func(rs []resource) []resource {
			get(first(t, rs, "google_sql_database_instance", "").Values, "settings", 0, "ip_configuration", 0).(map[string]any)["ipv4_enabled"] = true
			return rs
		}},
		{"no PITR", "backups/PITR not both enabled", func(rs []resource) []resource {
			get(first(t, rs, "google_sql_database_instance", "").Values, "settings", 0, "backup_configuration", 0).(map[string]any)["point_in_time_recovery_enabled"] = false
			return rs
		}},
		{"unpartitioned table", "is not partitioned", func(rs []resource) []resource {
			first(t, rs, "google_bigquery_table", "").Values["time_partitioning"] = []any{}
			return rs
		}},
		{"function user is superuser", "only the migrator may own the schema", func(rs []resource) []resource {
			first(t, rs, "google_sql_user", "functions[\"payment\"]").Values["database_roles"] = []any{"cloudsqlsuperuser"}
			return rs
		}},
		{"function user not abandoned", "want ABANDON", func(rs []resource) []resource {
			first(t, rs, "google_sql_user", "functions[\"shipment\"]").Values["deletion_policy"] = "DELETE"
			return rs
		}},
		{"backups not above log days", "needs more backups than log days", func(rs []resource) []resource {
			get(first(t, rs, "google_sql_database_instance", "").Values, "settings", 0, "backup_configuration", 0).(map[string]any)["transaction_log_retention_days"] = 7.0
			return rs
		}},
		{"connections over budget", "more than max_connections", func(rs []resource) []resource {
			get(first(t, rs, "google_cloudfunctions2_function", "payment").Values, "service_config", 0).(map[string]any)["max_instance_count"] = 500.0
			return rs
		}},
		{"direct VPC by path", "the API takes names", func(rs []resource) []resource {
			nic := get(first(t, rs, "google_cloudfunctions2_function", "payment").Values, "service_config", 0, "direct_vpc_network_interface", 0).(map[string]any)
			nic["network"] = "projects/example-dev/global/networks/platform"
			return rs
		}},
		{"no network user", "is not compute.networkUser", func(rs []resource) []resource {
			return without(rs, first(t, rs, "google_compute_subnetwork_iam_member", "payment"))
		}},
		{"alert on the long service name", "which no function's metrics carry", func(rs []resource) []resource {
			p := first(t, rs, "google_monitoring_alert_policy", "error_ratio")
			ct := get(p.Values, "conditions", 0, "condition_threshold", 0).(map[string]any)
			ct["filter"] = strings.Replace(ct["filter"].(string), `service_name = "`, `service_name = "projects/example-dev/locations/europe-west1/services/`, 1)
			return rs
		}},
		{"alert duration not whole minutes", "is not a multiple of 60s", func(rs []resource) []resource {
			p := first(t, rs, "google_monitoring_alert_policy", "oldest_unacked")
			get(p.Values, "conditions", 0, "condition_threshold", 0).(map[string]any)["duration"] = "90s"
			return rs
		}},
		{"orders API internal only", "no client can reach it", func(rs []resource) []resource {
			get(first(t, rs, "google_cloudfunctions2_function", "ordersapi").Values, "service_config", 0).(map[string]any)["ingress_settings"] = "ALLOW_INTERNAL_ONLY"
			return rs
		}},
		{"orders API behind no load balancer", "no load balancer NEG points at it", func(rs []resource) []resource {
			get(first(t, rs, "google_cloudfunctions2_function", "ordersapi").Values, "service_config", 0).(map[string]any)["ingress_settings"] = "ALLOW_INTERNAL_AND_GCLB"
			return rs
		}},
		{"keep-only image cleanup", "no active DELETE cleanup policy", func(rs []resource) []resource {
			r := first(t, rs, "google_artifact_registry_repository", "")
			var keep []any
			for _, p := range r.Values["cleanup_policies"].([]any) {
				if get(p, "action") == "KEEP" {
					keep = append(keep, p)
				}
			}
			r.Values["cleanup_policies"] = keep
			return rs
		}},
		{"builder with project-wide rights", "gives the function builder project-wide", func(rs []resource) []resource {
			first(t, rs, "google_project_iam_member", "builder").Values["role"] = "roles/cloudbuild.builds.builder"
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
