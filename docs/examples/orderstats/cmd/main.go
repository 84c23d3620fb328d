// Command cmd runs the example locally: go run ./docs/examples/orderstats/cmd.
package main

import (
	"log"

	"example.com/platform/docs/examples/orderstats"
	"example.com/platform/shared/app/localrun"
)

func main() { log.Fatal(localrun.Serve(orderstats.EntryPoint)) }
