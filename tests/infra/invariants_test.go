package infra_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"example.com/platform/shared/manifest"
	"example.com/platform/tests/infra"
	"example.com/platform/tests/tfprovider/provider"
)

var (
	schemaOnce sync.Once
	schema     *provider.Schema
	schemaErr  error
)

// labelable reports whether resources of typ take top-level labels,
// according to the real provider schema.
func labelable(t *testing.T, typ string) bool {
	schemaOnce.Do(func() {
		schema, schemaErr = provider.LoadSchemaFile(filepath.Join(h.Root, filepath.FromSlash(infra.SchemaFile)))
	})
	if schemaErr != nil {
		panic(schemaErr) // the schema file is part of the repository
	}
	sc, ok := schema.Resources[typ]
	if !ok {
		return false
	}
	for _, a := range sc.Block.Attributes {
		if a.Name == "labels" && (a.Optional || a.Required) {
			return true
		}
	}
	return false
}

// reporter is the part of testing.T the checks use, so that a test can
// run them on a broken configuration and see them fail.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// checkInvariants asserts the design's security and wiring rules on the
// resources of a configuration whose values are all known (an offline
// apply). env is the expected env label ("" to accept any).
func checkInvariants(t reporter, rs []resource, env string) {
	t.Helper()
	checkNoPublicMembers(t, rs)
	checkLabels(t, rs, env)
	checkFunctions(t, rs)
	checkSubscriptions(t, rs)
	checkCloudSQL(t, rs, env)
	checkBigQuery(t, rs)
}

// checkNoPublicMembers: no allUsers or allAuthenticatedUsers anywhere.
func checkNoPublicMembers(t reporter, rs []resource) {
	t.Helper()
	for _, r := range rs {
		if s := fmt.Sprint(r.Values); strings.Contains(s, "allUsers") || strings.Contains(s, "allAuthenticatedUsers") {
			t.Errorf("%s grants a public principal: %v", r.Address, r.Values)
		}
	}
}

// checkLabels: team and env labels on every resource the schema says takes
// labels (Cloud SQL carries them as settings.user_labels).
func checkLabels(t reporter, rs []resource, env string) {
	t.Helper()
	tt, _ := t.(*testing.T)
	cache := map[string]bool{}
	for _, r := range rs {
		var labels any
		switch {
		case r.Type == "google_sql_database_instance":
			labels = get(r.Values, "settings", 0, "user_labels")
		default:
			l, ok := cache[r.Type]
			if !ok {
				l = labelable(tt, r.Type)
				cache[r.Type] = l
			}
			if !l {
				continue
			}
			labels = r.Values["labels"]
		}
		m, _ := labels.(map[string]any)
		if m["team"] == nil || m["team"] == "" {
			t.Errorf("%s has no team label: %v", r.Address, labels)
		}
		if got, _ := m["env"].(string); got == "" || env != "" && got != env {
			t.Errorf("%s env label = %q, want %q", r.Address, got, env)
		}
	}
}

// checkFunctions: each function has its own runtime service account (one
// of the configuration's, not a default one), and every function that a
// push subscription feeds is internal-ingress only.
func checkFunctions(t reporter, rs []resource) {
	t.Helper()
	accounts := map[string]bool{}
	for _, sa := range ofType(rs, "google_service_account") {
		accounts[sa.str("email")] = true
	}
	pushTargets := map[string]bool{}
	for _, s := range ofType(rs, "google_pubsub_subscription") {
		if e := s.str("push_config", 0, "push_endpoint"); e != "" {
			pushTargets[e] = true
		}
	}
	owner := map[string]string{}
	for _, f := range ofType(rs, "google_cloudfunctions2_function") {
		if got := f.str("service_config", 0, "ingress_settings"); pushTargets[f.str("service_config", 0, "uri")] && got != "ALLOW_INTERNAL_ONLY" {
			t.Errorf("%s ingress_settings = %q, want ALLOW_INTERNAL_ONLY", f.Address, got)
		}
		sa := f.str("service_config", 0, "service_account_email")
		if !accounts[sa] {
			t.Errorf("%s runs as %q, not a service account of this configuration", f.Address, sa)
		}
		if other, dup := owner[sa]; dup {
			t.Errorf("%s and %s share the runtime service account %s", f.Address, other, sa)
		}
		owner[sa] = f.Address
	}
}

func isAgent(member string) bool {
	return strings.HasPrefix(member, "serviceAccount:service-") && strings.HasSuffix(member, "@gcp-sa-pubsub.iam.gserviceaccount.com")
}

// checkSubscriptions: every push subscription dead-letters, retries with
// backoff, never expires, pushes with OIDC and no wrapper; the Pub/Sub
// service agent may publish to each dead-letter topic and subscribe to each
// subscription; each push identity invokes its own function only.
func checkSubscriptions(t reporter, rs []resource) {
	t.Helper()
	agentPublishes := map[string]bool{}
	for _, b := range ofType(rs, "google_pubsub_topic_iam_member") {
		if b.str("role") == "roles/pubsub.publisher" && isAgent(b.str("member")) {
			agentPublishes[last(b.str("topic"))] = true
		}
	}
	agentSubscribes := map[string]bool{}
	for _, b := range ofType(rs, "google_pubsub_subscription_iam_member") {
		if b.str("role") == "roles/pubsub.subscriber" && isAgent(b.str("member")) {
			agentSubscribes[last(b.str("subscription"))] = true
		}
	}
	serviceByURI := map[string]string{}
	for _, f := range ofType(rs, "google_cloudfunctions2_function") {
		serviceByURI[f.str("service_config", 0, "uri")] = f.str("service_config", 0, "service")
	}
	invokes := map[string][]string{} // member -> services it may invoke
	for _, b := range ofType(rs, "google_cloud_run_v2_service_iam_member", "google_cloud_run_service_iam_member") {
		if b.str("role") == "roles/run.invoker" {
			invokes[b.str("member")] = append(invokes[b.str("member")], last(firstNonEmpty(b.str("name"), b.str("service"))))
		}
	}
	for _, s := range ofType(rs, "google_pubsub_subscription") {
		name := s.str("name")
		if get(s.Values, "push_config", 0) == nil {
			continue // pull subscriptions (e.g. a retained dead-letter archive) have no push wiring
		}
		dlq := last(s.str("dead_letter_policy", 0, "dead_letter_topic"))
		if dlq == "" {
			t.Errorf("%s has no dead-letter topic", s.Address)
		} else if !agentPublishes[dlq] {
			t.Errorf("%s: the Pub/Sub service agent cannot publish to its dead-letter topic %s", s.Address, dlq)
		}
		if get(s.Values, "retry_policy", 0) == nil {
			t.Errorf("%s has no retry_policy", s.Address)
		}
		if ttl := get(s.Values, "expiration_policy", 0, "ttl"); ttl != "" {
			t.Errorf("%s expiration_policy ttl = %v, want \"\" (never expires)", s.Address, ttl)
		}
		if !agentSubscribes[name] {
			t.Errorf("%s: the Pub/Sub service agent is not subscriber on it", s.Address)
		}
		if get(s.Values, "push_config", 0, "no_wrapper", 0, "write_metadata") != true {
			t.Errorf("%s: push without no_wrapper { write_metadata = true }", s.Address)
		}
		sa := s.str("push_config", 0, "oidc_token", 0, "service_account_email")
		if sa == "" {
			t.Errorf("%s pushes without an OIDC token", s.Address)
			continue
		}
		service, ok := serviceByURI[s.str("push_config", 0, "push_endpoint")]
		if !ok {
			t.Errorf("%s pushes to %q, which is no function of this configuration", s.Address, s.str("push_config", 0, "push_endpoint"))
			continue
		}
		got := invokes["serviceAccount:"+sa]
		if len(got) == 0 {
			t.Errorf("%s: push identity %s has no run.invoker", s.Address, sa)
		}
		for _, svc := range got {
			if svc != last(service) {
				t.Errorf("%s: push identity %s may invoke %s, not only its own function %s", s.Address, sa, svc, service)
			}
		}
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// checkCloudSQL: private IP only, TLS required, IAM authentication,
// backups with point-in-time recovery, deletion protection in prod.
func checkCloudSQL(t reporter, rs []resource, env string) {
	t.Helper()
	for _, db := range ofType(rs, "google_sql_database_instance") {
		ip := get(db.Values, "settings", 0, "ip_configuration", 0)
		if get(ip, "ipv4_enabled") != false {
			t.Errorf("%s has a public IP (ipv4_enabled = %v)", db.Address, get(ip, "ipv4_enabled"))
		}
		if get(ip, "private_network") == nil || get(ip, "private_network") == "" {
			t.Errorf("%s has no private network", db.Address)
		}
		if mode, _ := get(ip, "ssl_mode").(string); mode != "ENCRYPTED_ONLY" && mode != "TRUSTED_CLIENT_CERTIFICATE_REQUIRED" {
			t.Errorf("%s ssl_mode = %q: TLS is not required", db.Address, mode)
		}
		backup := get(db.Values, "settings", 0, "backup_configuration", 0)
		if get(backup, "enabled") != true || get(backup, "point_in_time_recovery_enabled") != true {
			t.Errorf("%s backups/PITR not both enabled: %v", db.Address, backup)
		}
		iamAuth := false
		flags, _ := get(db.Values, "settings", 0, "database_flags").([]any)
		for _, f := range flags {
			if get(f, "name") == "cloudsql.iam_authentication" && get(f, "value") == "on" {
				iamAuth = true
			}
		}
		if !iamAuth {
			t.Errorf("%s lacks database flag cloudsql.iam_authentication=on", db.Address)
		}
		if env == "prod" && (db.Values["deletion_protection"] != true || get(db.Values, "settings", 0, "deletion_protection_enabled") != true) {
			t.Errorf("%s: prod instance without deletion protection (terraform %v, API %v)", db.Address, db.Values["deletion_protection"], get(db.Values, "settings", 0, "deletion_protection_enabled"))
		}
	}
}

// checkBigQuery: every table is partitioned.
func checkBigQuery(t reporter, rs []resource) {
	t.Helper()
	for _, tb := range ofType(rs, "google_bigquery_table") {
		if get(tb.Values, "time_partitioning", 0) == nil && get(tb.Values, "range_partitioning", 0) == nil {
			t.Errorf("%s is not partitioned", tb.Address)
		}
	}
}

// checkManifestWiring asserts that the environment deploys what the
// repository's manifests say: one subscription per consumed topic (the
// dead-letter archive consumes every other consumer's dead-letter topic),
// one dead-letter topic per consumer, each subscription's delivery settings
// from its manifest, one function and two service accounts per event
// function.
func checkManifestWiring(t reporter, rs []resource, repo *manifest.Repo) {
	t.Helper()
	type want struct {
		topic string
		d     manifest.Delivery
	}
	subs := map[string]want{}
	dlqs := map[string]bool{}
	var consumers, archives []*manifest.Manifest
	for _, m := range repo.Functions {
		if m.Kind != manifest.KindCloudEvent {
			continue
		}
		if len(m.Consumes) > 0 || m.ConsumesDeadLetters != nil {
			dlqs[manifest.DeadLetterTopic(m.Name)] = true
		}
		if len(m.Consumes) > 0 {
			consumers = append(consumers, m)
		}
		if m.ConsumesDeadLetters != nil {
			archives = append(archives, m)
		}
		for _, c := range m.Consumes {
			subs[manifest.SubscriptionID(m.Name, c.Topic)] = want{c.Topic, c.Delivery}
		}
	}
	for _, a := range archives {
		for _, c := range consumers {
			if c.Name == a.Name {
				continue
			}
			topic := manifest.DeadLetterTopic(c.Name)
			subs[manifest.SubscriptionID(a.Name, topic)] = want{topic, *a.ConsumesDeadLetters}
		}
	}

	topics := map[string]bool{}
	for _, tp := range ofType(rs, "google_pubsub_topic") {
		topics[tp.str("name")] = true
	}
	for name := range repo.Topics.Topics {
		if !topics[name] {
			t.Errorf("catalogue topic %s is not deployed", name)
		}
	}
	for name := range dlqs {
		if !topics[name] {
			t.Errorf("dead-letter topic %s is not deployed", name)
		}
	}
	if wantN := len(repo.Topics.Topics) + len(dlqs); len(topics) != wantN {
		t.Errorf("%d topics deployed, want %d (catalogue + one dead-letter topic per consumer): %v", len(topics), wantN, slices.Sorted(maps.Keys(topics)))
	}

	got := map[string]bool{}
	for _, s := range ofType(rs, "google_pubsub_subscription") {
		if get(s.Values, "push_config", 0) == nil {
			continue
		}
		name := s.str("name")
		got[name] = true
		w, ok := subs[name]
		if !ok {
			t.Errorf("push subscription %s matches no manifest", name)
			continue
		}
		if tp := last(s.str("topic")); tp != w.topic {
			t.Errorf("%s topic = %s, want %s", name, tp, w.topic)
		}
		fn := strings.SplitN(name, "--", 2)[0]
		if dlq := last(s.str("dead_letter_policy", 0, "dead_letter_topic")); dlq != manifest.DeadLetterTopic(fn) {
			t.Errorf("%s dead-letters to %s, want %s", name, dlq, manifest.DeadLetterTopic(fn))
		}
		if n := get(s.Values, "dead_letter_policy", 0, "max_delivery_attempts"); n != float64(w.d.MaxDeliveryAttempts) {
			t.Errorf("%s max_delivery_attempts = %v, want %d", name, n, w.d.MaxDeliveryAttempts)
		}
		if v := s.str("retry_policy", 0, "minimum_backoff"); v != w.d.MinBackoff {
			t.Errorf("%s minimum_backoff = %q, want %q", name, v, w.d.MinBackoff)
		}
		if v := s.str("retry_policy", 0, "maximum_backoff"); v != w.d.MaxBackoff {
			t.Errorf("%s maximum_backoff = %q, want %q", name, v, w.d.MaxBackoff)
		}
		if v, _ := s.Values["enable_message_ordering"].(bool); v != w.d.Ordering {
			t.Errorf("%s enable_message_ordering = %v, want %v", name, v, w.d.Ordering)
		}
		if v := s.str("filter"); v != w.d.Filter {
			t.Errorf("%s filter = %q, want %q", name, v, w.d.Filter)
		}
		if secs, err := manifest.Seconds(w.d.AckDeadline); err == nil && s.Values["ack_deadline_seconds"] != float64(secs) {
			t.Errorf("%s ack_deadline_seconds = %v, want %d", name, s.Values["ack_deadline_seconds"], secs)
		}
	}
	for name := range subs {
		if !got[name] {
			t.Errorf("manifest subscription %s is not deployed", name)
		}
	}
	if n := len(ofType(rs, "google_cloudfunctions2_function")); n != len(repo.Functions) {
		t.Errorf("%d functions deployed, want %d (one per manifest)", n, len(repo.Functions))
	}
	for _, m := range repo.Functions {
		found := false
		for _, f := range ofType(rs, "google_cloudfunctions2_function") {
			if f.str("name") == m.Name {
				found = true
				if got := f.str("build_config", 0, "entry_point"); got != m.EntryPoint {
					t.Errorf("function %s entry_point = %q, want %q", m.Name, got, m.EntryPoint)
				}
				if got := get(f.Values, "service_config", 0, "max_instance_count"); got != float64(m.Resources.MaxInstances) {
					t.Errorf("function %s max_instance_count = %v, want %d", m.Name, got, m.Resources.MaxInstances)
				}
				if got := f.str("service_config", 0, "available_memory"); got != m.Resources.Memory {
					t.Errorf("function %s available_memory = %q, want %q", m.Name, got, m.Resources.Memory)
				}
				if got := f.str("service_config", 0, "ingress_settings"); m.Kind == manifest.KindCloudEvent && got != "ALLOW_INTERNAL_ONLY" {
					t.Errorf("event function %s ingress_settings = %q, want ALLOW_INTERNAL_ONLY", m.Name, got)
				}
				if got := f.str("labels", "team"); got != m.Owner.Team {
					t.Errorf("function %s team label = %q, want %q", m.Name, got, m.Owner.Team)
				}
			}
		}
		if !found {
			t.Errorf("function %s is not deployed", m.Name)
		}
	}
}
