// Command cmd runs the dead-letter archive locally with the Functions
// Framework: go run ./functions/deadletter/cmd. It listens on $PORT
// (default 8080) and serves FUNCTION_TARGET (default DeadLetter);
// configuration comes from the environment, as in production (see the
// deadletter package; set DEADLETTER_SINK=jsonl to write rows to a local
// file instead of BigQuery).
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"example.com/platform/functions/deadletter"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", deadletter.EntryPoint)
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
