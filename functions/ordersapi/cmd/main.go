// Command cmd runs the orders API locally with the Functions Framework:
// go run ./functions/ordersapi/cmd. It listens on $PORT (default 8080) and
// serves FUNCTION_TARGET (default OrdersAPI) on every path; configuration
// comes from the environment, as in production (see package ordersapi).
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"example.com/platform/functions/ordersapi"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", ordersapi.EntryPoint)
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
