// Command schemasubset copies the part of the hashicorp/google provider
// schema (the output of `providers schema -json`) that the project's
// Terraform can use into tests/testdata, gzipped. The test provider serves
// it; keeping a subset keeps the file small and the provider fast to start.
//
//	go run ./tfprovider/cmd/schemasubset -in ../../shared/terraform/google-provider-7.45.0-schema.json.gz \
//	    -out testdata/google-provider-7.45.0-schema.json.gz
//
// It keeps the provider block, every provider function, and every resource
// and data source whose type matches one of the prefixes below. The provider
// key of the output is the bare "hashicorp/google" (no registry host name).
package main

import (
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// prefixes are the resource and data source type prefixes kept: the services
// the design uses (Pub/Sub, Cloud Functions Gen2, Cloud Run, IAM, Cloud SQL,
// BigQuery, Storage, Artifact Registry, networking, load balancing, Secret Manager,
// monitoring, Cloud Scheduler, Cloud Build, logging, KMS) with room to grow.
var prefixes = []string{
	"google_pubsub_",
	"google_cloudfunctions2_",
	"google_cloudfunctions_",
	"google_cloud_run_",
	"google_cloud_scheduler_",
	"google_cloud_tasks_",
	"google_cloudbuild_",
	"google_service_account",
	"google_project",
	"google_client_",
	"google_iam_",
	"google_sql_",
	"google_bigquery_",
	"google_storage_",
	"google_artifact_registry_",
	"google_compute_network",
	"google_compute_subnetwork",
	"google_compute_global_address",
	"google_compute_router",
	"google_compute_firewall",
	"google_compute_default_service_account",
	// The external HTTPS load balancer of an HTTP service (http-service).
	"google_compute_region_network_endpoint_group",
	"google_compute_backend_service",
	"google_compute_url_map",
	"google_compute_target_https_proxy",
	"google_compute_target_http_proxy",
	"google_compute_managed_ssl_certificate",
	"google_compute_global_forwarding_rule",
	"google_compute_security_policy",
	"google_service_networking_",
	"google_vpc_access_",
	"google_secret_manager_",
	"google_monitoring_",
	"google_logging_",
	"google_kms_",
	"google_eventarc_",
	"google_organization_iam_",
	"google_billing_budget",
}

func keep(name string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

type providerSchema struct {
	Provider          json.RawMessage            `json:"provider"`
	ResourceSchemas   map[string]json.RawMessage `json:"resource_schemas"`
	DataSourceSchemas map[string]json.RawMessage `json:"data_source_schemas"`
	Functions         map[string]json.RawMessage `json:"functions,omitempty"`
}

type document struct {
	FormatVersion   string                     `json:"format_version"`
	ProviderSchemas map[string]*providerSchema `json:"provider_schemas"`
}

func main() {
	in := flag.String("in", "", "full schema (.json or .json.gz)")
	out := flag.String("out", "", "subset to write (.json.gz)")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "schemasubset:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(in, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("gunzip %s: %w", in, err)
		}
		r = zr
	}
	var doc document
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return fmt.Errorf("decode %s: %w", in, err)
	}
	var src *providerSchema
	for addr, ps := range doc.ProviderSchemas {
		if strings.HasSuffix(addr, "hashicorp/google") {
			src = ps
		}
	}
	if src == nil {
		return fmt.Errorf("%s: no hashicorp/google provider schema", in)
	}
	dst := &providerSchema{
		Provider:          src.Provider,
		ResourceSchemas:   map[string]json.RawMessage{},
		DataSourceSchemas: map[string]json.RawMessage{},
		Functions:         src.Functions,
	}
	for name, s := range src.ResourceSchemas {
		if keep(name) {
			dst.ResourceSchemas[name] = s
		}
	}
	for name, s := range src.DataSourceSchemas {
		if keep(name) {
			dst.DataSourceSchemas[name] = s
		}
	}
	doc.ProviderSchemas = map[string]*providerSchema{"hashicorp/google": dst}
	data, err := json.Marshal(doc) // map keys are sorted: the output is reproducible
	if err != nil {
		return err
	}
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(o)
	if _, err := zw.Write(data); err != nil {
		o.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		o.Close()
		return err
	}
	if err := o.Close(); err != nil {
		return err
	}
	fmt.Printf("kept %d resources, %d data sources, %d functions\n", len(dst.ResourceSchemas), len(dst.DataSourceSchemas), len(dst.Functions))
	return nil
}
