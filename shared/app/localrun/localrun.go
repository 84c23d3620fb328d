// Package localrun is the body of every function's cmd/main.go: it serves
// the functions registered with functions-framework-go the way Cloud Run
// functions does, for local runs and the local stack
// (go run ./functions/<name>/cmd).
//
// It is a package of its own so that programs importing package app
// (eventctl) do not link the framework's server.
package localrun

import (
	"fmt"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

// DefaultPort is the port when $PORT is not set.
const DefaultPort = "8080"

// Serve serves on $PORT (default DefaultPort) the function named by
// $FUNCTION_TARGET, which it sets to entryPoint when empty. The caller
// imports the function's package for its init() registration. Serve
// returns only when the server fails.
func Serve(entryPoint string) error {
	port := os.Getenv("PORT")
	if port == "" {
		port = DefaultPort
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", entryPoint)
	}
	if err := funcframework.Start(port); err != nil {
		return fmt.Errorf("funcframework.Start: %w", err)
	}
	return nil
}
