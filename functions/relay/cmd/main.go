// Command cmd runs the outbox relay locally: go run ./functions/relay/cmd.
package main

import (
	"log"

	"example.com/platform/functions/relay"
	"example.com/platform/shared/app/localrun"
)

func main() { log.Fatal(localrun.Serve(relay.EntryPoint)) }
