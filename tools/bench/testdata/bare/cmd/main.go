// Command bare serves the bare function on $PORT.
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	_ "example.com/platform/tools/bench/testdata/bare"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", "Bare")
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("bare: %v", err)
	}
}
