// Command payment runs the payment function locally, the way Cloud Run
// functions serves it: functions-framework-go on $PORT (default 8080),
// target $FUNCTION_TARGET (default the function's entry point). The local
// stack runs it with `go run ./functions/payment/cmd`.
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"example.com/platform/functions/payment"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", payment.EntryPoint)
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("payment: %v", err)
	}
}
