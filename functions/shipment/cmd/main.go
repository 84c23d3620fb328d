// Command cmd runs the shipment function locally with the Functions
// Framework: go run ./functions/shipment/cmd. It listens on $PORT (default
// 8080) and serves FUNCTION_TARGET (default Shipment); configuration comes
// from the environment, as in production (see the shipment package).
package main

import (
	"log"

	"example.com/platform/functions/shipment"
	"example.com/platform/shared/app/localrun"
)

func main() {
	if err := localrun.Serve(shipment.EntryPoint); err != nil {
		log.Fatalf("shipment: %v", err)
	}
}
