// Command cmd runs the analytics function locally with the Functions
// Framework: go run ./functions/analytics/cmd. It listens on $PORT (default
// 8080) and serves FUNCTION_TARGET (default Analytics); configuration comes
// from the environment, as in production (see the analytics package; set
// ANALYTICS_SINK=jsonl to write rows to a local file instead of BigQuery).
package main

import (
	"log"

	"example.com/platform/functions/analytics"
	"example.com/platform/shared/app/localrun"
)

func main() {
	if err := localrun.Serve(analytics.EntryPoint); err != nil {
		log.Fatalf("analytics: %v", err)
	}
}
