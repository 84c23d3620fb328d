// Command cmd runs the dead-letter archive locally with the Functions
// Framework: go run ./functions/deadletter/cmd. It listens on $PORT
// (default 8080) and serves FUNCTION_TARGET (default DeadLetter);
// configuration comes from the environment, as in production (see the
// deadletter package; set DEADLETTER_SINK=jsonl to write rows to a local
// file instead of BigQuery).
package main

import (
	"log"

	"example.com/platform/functions/deadletter"
	"example.com/platform/shared/app/localrun"
)

func main() {
	if err := localrun.Serve(deadletter.EntryPoint); err != nil {
		log.Fatalf("deadletter: %v", err)
	}
}
