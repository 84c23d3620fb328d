// Command cmd runs the shipment function locally with the Functions
// Framework: go run ./functions/shipment/cmd. It listens on $PORT (default
// 8080) and serves FUNCTION_TARGET (default Shipment); configuration comes
// from the environment, as in production (see the shipment package).
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"example.com/platform/functions/shipment"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", shipment.EntryPoint)
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
