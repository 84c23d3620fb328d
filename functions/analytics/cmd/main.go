// Command cmd runs the analytics function locally with the Functions
// Framework: go run ./functions/analytics/cmd. It listens on $PORT (default
// 8080) and serves FUNCTION_TARGET (default Analytics); configuration comes
// from the environment, as in production (see the analytics package; set
// ANALYTICS_SINK=jsonl to write rows to a local file instead of BigQuery).
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"example.com/platform/functions/analytics"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", analytics.EntryPoint)
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
