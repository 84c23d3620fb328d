package infra_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
)

// fixture copies tests/testdata/<name> into a temporary directory.
func fixture(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	src := filepath.Join(h.Root, "tests", "testdata", name)
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestToolchainValidatesFixture proves the CLI loads the provider and the
// fixture is valid against its schema.
func TestToolchainValidatesFixture(t *testing.T) {
	t.Parallel()
	if out, err := h.ValidateE(t, fixture(t, "fixture", nil)); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
}

// TestSchemaIsEnforced proves the served schema is the real one: an
// attribute the provider does not have, a missing required argument, a
// wrong type and a second block where max_items is 1 are all rejected by
// the CLI with the provider's schema.
func TestSchemaIsEnforced(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, tf, want string
	}{
		{"misspelled attribute", `
resource "google_pubsub_topic" "bad" {
  name                       = "bad"
  message_retention_duraton = "600s"
}`, `An argument named "message_retention_duraton" is not expected here`},
		{"missing required argument", `
resource "google_pubsub_subscription" "bad" {
  name = "bad"
}`, `The argument "topic" is required, but no definition was found.`},
		{"wrong type", `
resource "google_pubsub_subscription" "bad" {
  name                 = "bad"
  topic                = "t"
  ack_deadline_seconds = "thirty"
}`, `a number is required`},
		{"too many blocks", `
resource "google_pubsub_subscription" "bad" {
  name  = "bad"
  topic = "t"
  retry_policy {
    minimum_backoff = "10s"
  }
  retry_policy {
    minimum_backoff = "20s"
  }
}`, `No more than 1 "retry_policy" blocks are allowed`},
		{"unknown resource type", `
resource "google_pubsub_topik" "bad" {
  name = "bad"
}`, `google_pubsub_topik`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, "fixture", map[string]string{"bad.tf": tc.tf})
			out, err := h.ValidateE(t, dir)
			if err == nil {
				t.Fatalf("validate accepted %s:\n%s", tc.name, out)
			}
			if !strings.Contains(collapse(err.Error()), tc.want) {
				t.Fatalf("validate error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

// collapse joins the CLI's wrapped lines so a message can be matched
// whatever the terminal width.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestPlanMarksComputedUnknown proves plan semantics: configured values
// are planned as written, unset computed attributes are unknown, and data
// sources are read with deterministic values.
func TestPlanMarksComputedUnknown(t *testing.T) {
	t.Parallel()
	plan := h.Plan(t, fixture(t, "fixture", nil), nil)
	sub := plan.ResourceChangesMap["google_pubsub_subscription.default"]
	if sub == nil {
		t.Fatalf("no planned subscription; have %v", keys(plan.ResourceChangesMap))
	}
	after := sub.Change.After.(map[string]any)
	if got := after["ack_deadline_seconds"]; got != 30.0 {
		t.Errorf("ack_deadline_seconds = %v, want 30", got)
	}
	unknown := sub.Change.AfterUnknown.(map[string]any)
	for _, a := range []string{"id", "project", "effective_labels", "topic"} {
		if unknown[a] != true {
			t.Errorf("%s not unknown after plan: %v", a, unknown[a])
		}
	}
	dlp := unknown["dead_letter_policy"].([]any)[0].(map[string]any)
	if dlp["dead_letter_topic"] != true {
		t.Errorf("nested dead_letter_topic not unknown: %v", dlp)
	}
	member := plan.ResourcePlannedValuesMap["google_pubsub_topic_iam_member.agent"].AttributeValues["member"]
	if want := "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"; member != want {
		t.Errorf("member = %v, want %s (data source values)", member, want)
	}
}

// TestApplyAndDestroyOffline proves apply works against the test provider:
// computed values are filled, a second plan is empty, destroy succeeds.
func TestApplyAndDestroyOffline(t *testing.T) {
	t.Parallel()
	if h.RealProvider {
		t.Skip("applies only against the test provider; the real provider is exercised by the gcp-tagged tests")
	}
	dir := fixture(t, "fixture", nil)
	opts := h.Options(t, dir, nil)
	opts.PlanFilePath = ""
	defer terraform.Destroy(t, opts)
	if out, err := h.InitE(t, opts); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	terraform.Apply(t, opts)
	id := terraform.Output(t, opts, "subscription_id")
	if want := "projects/fixture-project/subscriptions/fixture--sub"; id != want {
		t.Errorf("subscription id = %q, want %q", id, want)
	}
	if code := terraform.PlanExitCode(t, opts); code != 0 {
		t.Errorf("second plan exit code %d, want 0 (no changes)", code)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
