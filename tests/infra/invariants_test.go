package infra_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
	checkDeployability(t, rs)
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
	checkParkedKeyAlerts(t, rs, repo)
}

// checkParkedKeyAlerts: every function consuming a topic with ordering
// (whose dead letters park their key) is watched by the parked-keys alert
// of its own team.
func checkParkedKeyAlerts(t reporter, rs []resource, repo *manifest.Repo) {
	t.Helper()
	watched := map[string]string{} // function -> team of the policy naming it
	for _, p := range ofType(rs, "google_monitoring_alert_policy") {
		if p.str("user_labels", "function") != "parked-keys" {
			continue
		}
		filter, _ := get(p.Values, "conditions", 0, "condition_threshold", 0, "filter").(string)
		for _, m := range repo.Functions {
			if strings.Contains(filter, `"`+m.Name+`"`) && strings.Contains(filter, "parked_key_age_seconds") {
				watched[m.Name] = p.str("user_labels", "team")
			}
		}
	}
	for _, m := range repo.Functions {
		for _, c := range m.Consumes {
			if c.Ordering && watched[m.Name] != m.Owner.Team {
				t.Errorf("function %s parks ordering keys of %s but no parked-keys alert of team %s watches it (got %q)", m.Name, c.Topic, m.Owner.Team, watched[m.Name])
			}
		}
	}
}

// checkDeployability asserts the API rules the provider does not check and
// the least-privilege rules of the pipeline, on whatever part of the
// platform a configuration holds (each check skips what is absent).
func checkDeployability(t reporter, rs []resource) {
	t.Helper()
	checkSQLUsers(t, rs)
	checkBackupRetention(t, rs)
	checkConnectionBudget(t, rs)
	checkDirectVPC(t, rs)
	checkAlertPolicies(t, rs)
	checkHTTPReachable(t, rs)
	checkCleanup(t, rs)
	checkBuilderScope(t, rs)
	checkPipeline(t, rs)
}

// checkSQLUsers: no IAM database user gets cloudsqlsuperuser except the one
// migrator (migrate-<instance>), and every IAM user is abandoned on destroy.
func checkSQLUsers(t reporter, rs []resource) {
	t.Helper()
	supers := 0
	for _, u := range ofType(rs, "google_sql_user") {
		roles, _ := u.Values["database_roles"].([]any)
		for _, r := range roles {
			if r == "cloudsqlsuperuser" {
				supers++
				if !strings.HasPrefix(u.str("name"), "migrate-") {
					t.Errorf("%s (%s) gets cloudsqlsuperuser: only the migrator may own the schema", u.Address, u.str("name"))
				}
			}
		}
		if strings.HasPrefix(u.str("type"), "CLOUD_IAM") && u.str("deletion_policy") != "ABANDON" {
			t.Errorf("%s deletion_policy = %q, want ABANDON (PostgreSQL cannot drop a role that owns or was granted objects)", u.Address, u.str("deletion_policy"))
		}
	}
	if supers > 1 {
		t.Errorf("%d database users get cloudsqlsuperuser, want at most the migrator", supers)
	}
}

// checkBackupRetention: Cloud SQL rejects retained backups that do not
// exceed the transaction log days.
func checkBackupRetention(t reporter, rs []resource) {
	t.Helper()
	for _, db := range ofType(rs, "google_sql_database_instance") {
		b := get(db.Values, "settings", 0, "backup_configuration", 0)
		kept, _ := get(b, "backup_retention_settings", 0, "retained_backups").(float64)
		logs, _ := get(b, "transaction_log_retention_days").(float64)
		if kept <= logs {
			t.Errorf("%s keeps %v backups and %v days of logs: Cloud SQL needs more backups than log days", db.Address, kept, logs)
		}
	}
}

func sqlFlag(db resource, name string) (string, bool) {
	flags, _ := get(db.Values, "settings", 0, "database_flags").([]any)
	for _, f := range flags {
		if get(f, "name") == name {
			v, _ := get(f, "value").(string)
			return v, true
		}
	}
	return "", false
}

// checkConnectionBudget: the functions' max instances x DB_MAX_CONNS, summed,
// fits in the instance's max_connections flag.
func checkConnectionBudget(t reporter, rs []resource) {
	t.Helper()
	for _, db := range ofType(rs, "google_sql_database_instance") {
		v, ok := sqlFlag(db, "max_connections")
		if !ok {
			t.Errorf("%s sets no max_connections flag: the connection budget is unchecked", db.Address)
			continue
		}
		limit, _ := strconv.Atoi(v)
		total := 0
		for _, f := range ofType(rs, "google_cloudfunctions2_function") {
			pool, err := strconv.Atoi(f.str("service_config", 0, "environment_variables", "DB_MAX_CONNS"))
			if f.str("service_config", 0, "environment_variables", "DB_INSTANCE_CONNECTION_NAME") == "" {
				continue
			}
			if err != nil {
				t.Errorf("%s uses the database without DB_MAX_CONNS", f.Address)
				continue
			}
			n, _ := get(f.Values, "service_config", 0, "max_instance_count").(float64)
			total += int(n) * pool
		}
		if total > limit {
			t.Errorf("%s: functions may open %d connections, more than max_connections %d", db.Address, total, limit)
		}
	}
}

// checkDirectVPC: Direct VPC egress names its network and subnetwork (the
// API takes names), and the runtime account is network user on that
// subnetwork.
func checkDirectVPC(t reporter, rs []resource) {
	t.Helper()
	users := map[string]bool{} // member|subnetwork
	for _, b := range ofType(rs, "google_compute_subnetwork_iam_member") {
		if b.str("role") == "roles/compute.networkUser" {
			users[b.str("member")+"|"+last(b.str("subnetwork"))] = true
		}
	}
	for _, f := range ofType(rs, "google_cloudfunctions2_function") {
		nic := get(f.Values, "service_config", 0, "direct_vpc_network_interface", 0)
		if nic == nil {
			continue
		}
		network, _ := get(nic, "network").(string)
		subnet, _ := get(nic, "subnetwork").(string)
		if strings.Contains(network, "/") || strings.Contains(subnet, "/") {
			t.Errorf("%s Direct VPC egress uses paths (%q, %q): the API takes names", f.Address, network, subnet)
		}
		member := "serviceAccount:" + f.str("service_config", 0, "service_account_email")
		if !users[member+"|"+last(subnet)] {
			t.Errorf("%s: runtime account %s is not compute.networkUser on subnetwork %q", f.Address, member, subnet)
		}
	}
	for _, j := range ofType(rs, "google_cloud_run_v2_job") {
		nic := get(j.Values, "template", 0, "template", 0, "vpc_access", 0, "network_interfaces", 0)
		if s, _ := get(nic, "subnetwork").(string); strings.Contains(s, "/") {
			t.Errorf("%s Direct VPC egress uses a path (%q): the API takes names", j.Address, s)
		}
	}
}

var serviceNameLabel = regexp.MustCompile(`resource\.labels\.service_name = "([^"]*)"`)

// checkAlertPolicies: condition durations are whole minutes (the API
// rejects others), and a Cloud Run filter names a service by the short name
// its metrics carry, one of this configuration's.
func checkAlertPolicies(t reporter, rs []resource) {
	t.Helper()
	services := map[string]bool{}
	for _, f := range ofType(rs, "google_cloudfunctions2_function") {
		services[last(f.str("service_config", 0, "service"))] = true
	}
	for _, p := range ofType(rs, "google_monitoring_alert_policy") {
		conds, _ := p.Values["conditions"].([]any)
		for _, c := range conds {
			ct := get(c, "condition_threshold", 0)
			if ct == nil {
				continue
			}
			d, _ := get(ct, "duration").(string)
			secs, err := strconv.Atoi(strings.TrimSuffix(d, "s"))
			if err != nil || !strings.HasSuffix(d, "s") || secs%60 != 0 {
				t.Errorf("%s condition duration %q is not a multiple of 60s", p.Address, d)
			}
			for _, key := range []string{"filter", "denominator_filter"} {
				s, _ := get(ct, key).(string)
				for _, m := range serviceNameLabel.FindAllStringSubmatch(s, -1) {
					if strings.Contains(m[1], "/") || len(services) > 0 && !services[m[1]] {
						t.Errorf("%s %s matches service_name %q, which no function's metrics carry", p.Address, key, m[1])
					}
				}
			}
		}
	}
}

// checkHTTPReachable: a function that no push subscription feeds is an HTTP
// service, and some client must reach it: directly (ALLOW_ALL, IAM still
// required) or through a load balancer whose serverless NEG points at it.
func checkHTTPReachable(t reporter, rs []resource) {
	t.Helper()
	pushTargets := map[string]bool{}
	for _, s := range ofType(rs, "google_pubsub_subscription") {
		if e := s.str("push_config", 0, "push_endpoint"); e != "" {
			pushTargets[e] = true
		}
	}
	negs := map[string]bool{}
	for _, n := range ofType(rs, "google_compute_region_network_endpoint_group") {
		negs[n.str("cloud_run", 0, "service")] = true
	}
	for _, f := range ofType(rs, "google_cloudfunctions2_function") {
		if pushTargets[f.str("service_config", 0, "uri")] {
			continue
		}
		switch ingress := f.str("service_config", 0, "ingress_settings"); ingress {
		case "ALLOW_ALL":
		case "ALLOW_INTERNAL_AND_GCLB":
			if !negs[last(f.str("service_config", 0, "service"))] {
				t.Errorf("%s ingress ALLOW_INTERNAL_AND_GCLB but no load balancer NEG points at it: unreachable", f.Address)
			}
		default:
			t.Errorf("%s is an HTTP service with ingress %q: no client can reach it", f.Address, ingress)
		}
	}
}

// checkCleanup: image repositories delete old versions (a KEEP-only policy
// cleans nothing) and buckets expire live objects (not only noncurrent ones).
func checkCleanup(t reporter, rs []resource) {
	t.Helper()
	for _, r := range ofType(rs, "google_artifact_registry_repository") {
		deletes := false
		policies, _ := r.Values["cleanup_policies"].([]any)
		for _, p := range policies {
			if get(p, "action") == "DELETE" {
				deletes = true
			}
		}
		if !deletes || r.Values["cleanup_policy_dry_run"] == true {
			t.Errorf("%s has no active DELETE cleanup policy: images pile up", r.Address)
		}
	}
	for _, b := range ofType(rs, "google_storage_bucket") {
		ages := false
		rules, _ := b.Values["lifecycle_rule"].([]any)
		for _, r := range rules {
			if n, _ := get(r, "condition", 0, "age").(float64); n > 0 && get(r, "action", 0, "type") == "Delete" {
				ages = true
			}
		}
		if !ages {
			t.Errorf("%s has no lifecycle rule deleting objects by age: nothing is ever cleaned", b.Address)
		}
	}
}

// checkBuilderScope: the account that builds function images holds no
// project-wide role but log writing (its repository and bucket grants are
// resource-level).
func checkBuilderScope(t reporter, rs []resource) {
	t.Helper()
	for _, b := range ofType(rs, "google_project_iam_member") {
		if strings.Contains(b.str("member"), "function-builder@") && b.str("role") != "roles/logging.logWriter" {
			t.Errorf("%s gives the function builder project-wide %s", b.Address, b.str("role"))
		}
	}
}

// checkPipeline: one ci trigger per environment, run by the ci account,
// which has no deploy rights and no access to the state; deploy and apply
// run as the deployer; only an apply trigger waits for approval, and it
// applies what a deploy build planned.
func checkPipeline(t reporter, rs []resource) {
	t.Helper()
	triggers := ofType(rs, "google_cloudbuild_trigger")
	if len(triggers) == 0 {
		return
	}
	byRole := map[string][]resource{}
	for _, tr := range triggers {
		name := tr.str("name")
		role := name[strings.LastIndex(name, "-")+1:]
		byRole[role] = append(byRole[role], tr)
		sa := tr.str("service_account")
		approval := get(tr.Values, "approval_config", 0, "approval_required") == true
		switch role {
		case "ci":
			if !strings.Contains(sa, "/ci-runner@") {
				t.Errorf("%s runs as %q, want the ci-runner account (no deploy rights)", tr.Address, sa)
			}
			if files, _ := tr.Values["included_files"].([]any); len(files) > 0 {
				t.Errorf("%s builds only for %v: every commit must build (a new function folder needs no trigger edit)", tr.Address, files)
			}
			if tr.str("filename") != "cloudbuild.yaml" || approval {
				t.Errorf("%s: want cloudbuild.yaml without approval, got %q approval=%v", tr.Address, tr.str("filename"), approval)
			}
		case "deploy", "apply":
			if !strings.Contains(sa, "/deployer@") {
				t.Errorf("%s runs as %q, want the deployer", tr.Address, sa)
			}
			if get(tr.Values, "pubsub_config", 0, "topic") == nil || !strings.HasSuffix(get(tr.Values, "pubsub_config", 0, "topic").(string), "/topics/cloud-builds") {
				t.Errorf("%s is not started by a build status on cloud-builds", tr.Address)
			}
			if role == "deploy" && approval {
				t.Errorf("%s waits for approval before any plan exists", tr.Address)
			}
			if role == "apply" && (!approval || get(tr.Values, "substitutions", "_PLAN_BUILD_ID") == nil) {
				t.Errorf("%s must wait for approval and apply the plan of _PLAN_BUILD_ID", tr.Address)
			}
		default:
			t.Errorf("%s: unknown trigger role %q (want <env>-ci, -deploy, -apply)", tr.Address, role)
		}
	}
	if len(byRole["ci"]) != 1 || len(byRole["deploy"]) != 1 {
		t.Errorf("want one ci and one deploy trigger per environment, got %d and %d", len(byRole["ci"]), len(byRole["deploy"]))
	}
	if len(byRole["apply"]) == 1 {
		if get(byRole["deploy"][0].Values, "substitutions", "_APPLY") != "false" {
			t.Errorf("with an approval-gated apply trigger, the deploy build must only plan (_APPLY=false)")
		}
	}
	for _, b := range ofType(rs, "google_project_iam_member") {
		if strings.Contains(b.str("member"), "ci-runner@") && b.str("role") != "roles/logging.logWriter" {
			t.Errorf("%s gives the ci account %s: it must have no deploy rights", b.Address, b.str("role"))
		}
	}
	for _, bk := range ofType(rs, "google_storage_bucket") {
		if !strings.HasSuffix(bk.str("name"), "-tfstate") {
			continue
		}
		for _, b := range ofType(rs, "google_storage_bucket_iam_member") {
			if b.str("bucket") == bk.str("name") && !strings.Contains(b.str("member"), "deployer@") {
				t.Errorf("%s lets %s read the state and saved plans", b.Address, b.str("member"))
			}
		}
	}
}
