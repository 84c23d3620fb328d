package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// ProjectNumber is the number every project has in this provider's world:
// data sources and computed "number" attributes return it.
const ProjectNumber = "123456789012"

// DefaultProject and DefaultRegion are used when the provider block sets no
// project or region.
const (
	DefaultProject = "test-project"
	DefaultRegion  = "europe-west1"
)

// attrFunc decides the new value of one attribute of a block; it gets the
// attribute's schema and current value.
type attrFunc func(a *tfprotov5.SchemaAttribute, v tftypes.Value) (tftypes.Value, error)

// walkBlock rebuilds the object v of block b, replacing every attribute,
// at any depth of nested blocks, with what f returns. Null and unknown
// objects are returned unchanged.
func walkBlock(b *tfprotov5.SchemaBlock, v tftypes.Value, f attrFunc) (tftypes.Value, error) {
	if v.IsNull() || !v.IsKnown() {
		return v, nil
	}
	vals := map[string]tftypes.Value{}
	if err := v.As(&vals); err != nil {
		return v, err
	}
	for _, a := range b.Attributes {
		cur, ok := vals[a.Name]
		if !ok {
			continue
		}
		nv, err := f(a, cur)
		if err != nil {
			return v, fmt.Errorf("%s: %w", a.Name, err)
		}
		vals[a.Name] = nv
	}
	for _, nb := range b.BlockTypes {
		cur, ok := vals[nb.TypeName]
		if !ok || cur.IsNull() || !cur.IsKnown() {
			continue
		}
		var err error
		switch nb.Nesting {
		case tfprotov5.SchemaNestedBlockNestingModeSingle, tfprotov5.SchemaNestedBlockNestingModeGroup:
			vals[nb.TypeName], err = walkBlock(nb.Block, cur, f)
		case tfprotov5.SchemaNestedBlockNestingModeList, tfprotov5.SchemaNestedBlockNestingModeSet:
			var elems []tftypes.Value
			if err = cur.As(&elems); err == nil {
				for i := range elems {
					if elems[i], err = walkBlock(nb.Block, elems[i], f); err != nil {
						break
					}
				}
				vals[nb.TypeName] = tftypes.NewValue(cur.Type(), elems)
			}
		case tfprotov5.SchemaNestedBlockNestingModeMap:
			elems := map[string]tftypes.Value{}
			if err = cur.As(&elems); err == nil {
				for k, e := range elems {
					if elems[k], err = walkBlock(nb.Block, e, f); err != nil {
						break
					}
				}
				vals[nb.TypeName] = tftypes.NewValue(cur.Type(), elems)
			}
		}
		if err != nil {
			return v, fmt.Errorf("%s: %w", nb.TypeName, err)
		}
	}
	return tftypes.NewValue(v.Type(), vals), nil
}

// markUnknown is the plan rule: a computed attribute the configuration and
// prior state leave null becomes unknown ("known after apply"); write-only
// attributes are never planned.
func markUnknown(a *tfprotov5.SchemaAttribute, v tftypes.Value) (tftypes.Value, error) {
	switch {
	case a.WriteOnly:
		return tftypes.NewValue(v.Type(), nil), nil
	case a.Computed && v.IsNull():
		return tftypes.NewValue(v.Type(), tftypes.UnknownValue), nil
	}
	return v, nil
}

// filler fills the unknown (and, for data sources, null) computed values
// of one object deterministically.
type filler struct {
	typeName string
	project  string
	region   string
	hash     string            // of the type and the known planned values
	known    map[string]string // known top-level string attributes
	fillNull bool              // data sources: null computed attributes are filled too
}

func newFiller(typeName string, v tftypes.Value, project, region string, fillNull bool) *filler {
	sum := sha256.Sum256([]byte(typeName + "\x00" + v.String()))
	f := &filler{typeName: typeName, project: project, region: region, hash: hex.EncodeToString(sum[:4]), known: map[string]string{}, fillNull: fillNull}
	vals := map[string]tftypes.Value{}
	if v.IsKnown() && !v.IsNull() && v.As(&vals) == nil {
		for k, av := range vals {
			var s string
			if av.Type().Is(tftypes.String) && av.IsKnown() && !av.IsNull() && av.As(&s) == nil {
				f.known[k] = s
			}
		}
	}
	if p := f.known["project"]; p != "" {
		f.project = p
	}
	return f
}

func (f *filler) attr(a *tfprotov5.SchemaAttribute, v tftypes.Value) (tftypes.Value, error) {
	if a.WriteOnly {
		return tftypes.NewValue(v.Type(), nil), nil
	}
	if !a.Computed {
		return v, nil
	}
	if !v.IsKnown() || (f.fillNull && v.IsNull()) {
		return f.value(a.Name, v.Type()), nil
	}
	if !v.IsFullyKnown() {
		return tftypes.Transform(v, func(_ *tftypes.AttributePath, e tftypes.Value) (tftypes.Value, error) {
			if !e.IsKnown() {
				return f.value(a.Name, e.Type()), nil
			}
			return e, nil
		})
	}
	return v, nil
}

// short is the resource type without the provider prefix.
func (f *filler) short() string { return strings.TrimPrefix(f.typeName, "google_") }

// idFormats are the id shapes of the real provider for the types the
// project uses, so that modules validating or parsing ids see what they
// will see in a real project. {x} is the known top-level string attribute
// x; {region} falls back to location and then the provider's region.
var idFormats = map[string]string{
	"google_artifact_registry_repository":          "projects/{project}/locations/{location}/repositories/{repository_id}",
	"google_bigquery_dataset":                      "projects/{project}/datasets/{dataset_id}",
	"google_bigquery_table":                        "projects/{project}/datasets/{dataset_id}/tables/{table_id}",
	"google_cloud_run_v2_service":                  "projects/{project}/locations/{location}/services/{name}",
	"google_cloud_scheduler_job":                   "projects/{project}/locations/{region}/jobs/{name}",
	"google_cloudfunctions2_function":              "projects/{project}/locations/{location}/functions/{name}",
	"google_compute_global_address":                "projects/{project}/global/addresses/{name}",
	"google_cloud_run_v2_job":                      "projects/{project}/locations/{location}/jobs/{name}",
	"google_compute_backend_service":               "projects/{project}/global/backendServices/{name}",
	"google_compute_global_forwarding_rule":        "projects/{project}/global/forwardingRules/{name}",
	"google_compute_managed_ssl_certificate":       "projects/{project}/global/sslCertificates/{name}",
	"google_compute_region_network_endpoint_group": "projects/{project}/regions/{region}/networkEndpointGroups/{name}",
	"google_compute_security_policy":               "projects/{project}/global/securityPolicies/{name}",
	"google_compute_target_http_proxy":             "projects/{project}/global/targetHttpProxies/{name}",
	"google_compute_target_https_proxy":            "projects/{project}/global/targetHttpsProxies/{name}",
	"google_compute_url_map":                       "projects/{project}/global/urlMaps/{name}",
	"google_compute_network":                       "projects/{project}/global/networks/{name}",
	"google_compute_router":                        "projects/{project}/regions/{region}/routers/{name}",
	"google_compute_subnetwork":                    "projects/{project}/regions/{region}/subnetworks/{name}",
	"google_project_service":                       "{project}/{service}",
	"google_pubsub_schema":                         "projects/{project}/schemas/{name}",
	"google_pubsub_subscription":                   "projects/{project}/subscriptions/{name}",
	"google_pubsub_topic":                          "projects/{project}/topics/{name}",
	"google_secret_manager_secret":                 "projects/{project}/secrets/{secret_id}",
	"google_service_account":                       "projects/{project}/serviceAccounts/{email}",
	"google_sql_database":                          "projects/{project}/instances/{instance}/databases/{name}",
	"google_sql_database_instance":                 "{name}",
	"google_storage_bucket":                        "{name}",
	"google_vpc_access_connector":                  "projects/{project}/locations/{region}/connectors/{name}",
	"google_monitoring_notification_channel":       "projects/{project}/notificationChannels/{hash}",
	"google_monitoring_alert_policy":               "projects/{project}/alertPolicies/{hash}",
}

// computedFormats are computed attributes other than id with a known
// shape in the real provider, by type.
var computedFormats = map[string]map[string]string{
	"google_service_account":              {"name": "projects/{project}/serviceAccounts/{email}"},
	"google_secret_manager_secret":        {"name": "projects/" + ProjectNumber + "/secrets/{secret_id}"},
	"google_artifact_registry_repository": {"name": "{repository_id}"},
	"google_sql_database_instance": {
		"connection_name":    "{project}:{region}:{name}",
		"private_ip_address": "10.0.0.3",
		"self_link":          "https://sqladmin.googleapis.com/sql/v1beta4/projects/{project}/instances/{name}",
	},
	"google_storage_bucket":                  {"url": "gs://{name}"},
	"google_monitoring_alert_policy":         {"name": "projects/{project}/alertPolicies/{hash}"},
	"google_monitoring_notification_channel": {"name": "projects/{project}/notificationChannels/{hash}"},
	"google_cloudbuild_trigger":              {"trigger_id": "{hash}"},
	// The real provider reports the function's Cloud Run service by its
	// full resource name; metrics label it with the short name.
	"google_cloudfunctions2_function": {"service": "projects/{project}/locations/{location}/services/{name}"},
	"google_compute_global_address":   {"address": "10.10.0.0"},
}

func (f *filler) format(tmpl string) string {
	return os.Expand(tmpl, func(k string) string {
		switch k {
		case "project":
			return f.project
		case "hash":
			return f.hash
		case "email":
			return f.email()
		case "region", "location":
			if v := f.known[k]; v != "" {
				return v
			}
			if v := f.known["location"]; v != "" {
				return v
			}
			return f.region
		}
		if v := f.known[k]; v != "" {
			return v
		}
		return f.hash
	})
}

// id is a stable id in the provider's shape for the type, or a generic
// "projects/<project>/<type>/<name>" one.
func (f *filler) id() string {
	if t, ok := idFormats[f.typeName]; ok {
		return f.format(braces(t))
	}
	for _, k := range []string{"name", "account_id", "dataset_id", "table_id", "secret_id", "topic", "subscription", "instance", "bucket", "service"} {
		if n := f.known[k]; n != "" {
			if strings.HasPrefix(n, "projects/") {
				return n
			}
			return "projects/" + f.project + "/" + f.short() + "/" + n
		}
	}
	return f.short() + "/" + f.hash
}

// braces turns "{x}" placeholders into os.Expand's "${x}".
func braces(t string) string { return strings.ReplaceAll(t, "{", "${") }

// email is a service-account-shaped address.
func (f *filler) email() string {
	local := f.known["account_id"]
	if local == "" {
		local = strings.ReplaceAll(f.short(), "_", "-") + "-" + f.hash
	}
	return local + "@" + f.project + ".iam.gserviceaccount.com"
}

func (f *filler) value(name string, typ tftypes.Type) tftypes.Value {
	switch {
	case typ.Is(tftypes.String):
		return tftypes.NewValue(typ, f.str(name))
	case typ.Is(tftypes.Number):
		n := new(big.Float)
		if name == "number" {
			n.SetString(ProjectNumber)
		}
		return tftypes.NewValue(typ, n)
	case typ.Is(tftypes.Bool):
		return tftypes.NewValue(typ, false)
	case typ.Is(tftypes.List{}), typ.Is(tftypes.Set{}):
		return tftypes.NewValue(typ, []tftypes.Value{})
	case typ.Is(tftypes.Map{}):
		return tftypes.NewValue(typ, map[string]tftypes.Value{})
	case typ.Is(tftypes.Object{}):
		ot := typ.(tftypes.Object)
		vals := make(map[string]tftypes.Value, len(ot.AttributeTypes))
		for k, at := range ot.AttributeTypes {
			vals[k] = f.value(k, at)
		}
		return tftypes.NewValue(typ, vals)
	case typ.Is(tftypes.Tuple{}):
		tt := typ.(tftypes.Tuple)
		vals := make([]tftypes.Value, len(tt.ElementTypes))
		for i, et := range tt.ElementTypes {
			vals[i] = f.value(name, et)
		}
		return tftypes.NewValue(typ, vals)
	}
	// DynamicPseudoType: a known empty string is a concrete value.
	return tftypes.NewValue(tftypes.String, "")
}

func (f *filler) str(name string) string {
	if t, ok := computedFormats[f.typeName][name]; ok {
		return f.format(braces(t))
	}
	switch name {
	case "id":
		return f.id()
	case "project", "project_id":
		return f.project
	case "number", "project_number":
		return ProjectNumber
	case "region", "location":
		return f.region
	case "email", "service_account_email":
		return f.email()
	case "member":
		return "serviceAccount:" + f.email()
	case "unique_id":
		return "1" + ProjectNumber + "0000000"
	case "url", "uri", "self_link", "service_uri", "endpoint":
		return "https://" + strings.ReplaceAll(f.short(), "_", "-") + "-" + f.hash + ".run.app"
	case "create_time", "update_time", "creation_time", "last_modified_time", "effective_time":
		return "2025-01-01T00:00:00Z"
	}
	return f.short() + "-" + f.hash
}
