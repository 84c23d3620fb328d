// Command tfprovider is the offline stand-in for the hashicorp/google
// provider used by the infrastructure checks (tests/infra). It serves the
// real 7.45.0 schema from tests/testdata over plugin protocol 5; see package
// provider for what plan, apply and read do.
//
// Terraform or OpenTofu start it through a CLI configuration file with a
// dev_overrides entry for hashicorp/google pointing at the directory that
// holds this binary as terraform-provider-google. The schema file is found
// at the path baked in at build time:
//
//	go build -ldflags "-X main.schemaPath=$PWD/testdata/google-provider-7.45.0-schema.json.gz" \
//	    -o DIR/terraform-provider-google ./tfprovider
//
// or at $INFRA_PROVIDER_SCHEMA when set.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tfprotov5/tf5server"

	"example.com/platform/tests/tfprovider/provider"
)

// schemaPath is set with -ldflags -X at build time.
var schemaPath string

func main() {
	path := schemaPath
	if p := os.Getenv("INFRA_PROVIDER_SCHEMA"); p != "" {
		path = p
	}
	if path == "" {
		fmt.Fprintln(os.Stderr, "tfprovider: no schema: build with -ldflags -X main.schemaPath=... or set INFRA_PROVIDER_SCHEMA")
		os.Exit(1)
	}
	s, err := provider.LoadSchemaFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tfprovider:", err)
		os.Exit(1)
	}
	srv := provider.New(s)
	if err := tf5server.Serve("hashicorp/google", func() tfprotov5.ProviderServer { return srv }); err != nil {
		fmt.Fprintln(os.Stderr, "tfprovider:", err)
		os.Exit(1)
	}
}
