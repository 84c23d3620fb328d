//go:build gcp

package infra_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/gruntwork-io/terratest/modules/random"
	"github.com/gruntwork-io/terratest/modules/terraform"
)

// TestApplyLive applies the topic module to a real project, checks the live
// topic through the Pub/Sub API and destroys it. It needs the real provider
// (INFRA_REAL_PROVIDER=1), credentials and GOOGLE_CLOUD_PROJECT:
//
//	INFRA_REAL_PROVIDER=1 GOOGLE_CLOUD_PROJECT=my-sandbox \
//	    go test -tags gcp -run TestApplyLive ./infra/
func TestApplyLive(t *testing.T) {
	project := os.Getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		t.Skip("set GOOGLE_CLOUD_PROJECT (and INFRA_REAL_PROVIDER=1, with credentials) to apply to a real project: " +
			"INFRA_REAL_PROVIDER=1 GOOGLE_CLOUD_PROJECT=<sandbox> go test -tags gcp -run TestApplyLive ./infra/")
	}
	if !h.RealProvider {
		t.Fatal("apply-level tests need the real provider: set INFRA_REAL_PROVIDER=1")
	}
	dir := h.CopyRepo(t, ".")
	name := "infra-check-" + strings.ToLower(random.UniqueId())
	root := fmt.Sprintf(`
variable "project" { type = string }
variable "name" { type = string }

module "topic" {
  source     = "./infra/modules/topic"
  project_id = var.project
  name       = var.name
  env        = "test"
  labels     = { team = "platform" }

  message_retention_duration = "86400s"
}

output "id" { value = module.topic.id }
`)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := h.Options(t, dir, map[string]any{"project": project, "name": name})
	opts.PlanFilePath = ""
	defer terraform.Destroy(t, opts)
	terraform.InitAndApply(t, opts)

	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatalf("pubsub client: %v", err)
	}
	defer client.Close()
	topic, err := client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: terraform.Output(t, opts, "id")})
	if err != nil {
		t.Fatalf("get live topic: %v", err)
	}
	if got := topic.GetLabels(); got["team"] != "platform" || got["env"] != "test" {
		t.Errorf("live labels = %v, want team=platform env=test", got)
	}
	if got := topic.GetMessageRetentionDuration().AsDuration().Seconds(); got != 86400 {
		t.Errorf("live retention = %vs, want 86400s", got)
	}
}
