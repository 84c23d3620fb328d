// Command payment runs the payment function locally, the way Cloud Run
// functions serves it: functions-framework-go on $PORT (default 8080),
// target $FUNCTION_TARGET (default the function's entry point). The local
// stack runs it with `go run ./functions/payment/cmd`.
package main

import (
	"log"

	"example.com/platform/functions/payment"
	"example.com/platform/shared/app/localrun"
)

func main() {
	if err := localrun.Serve(payment.EntryPoint); err != nil {
		log.Fatalf("payment: %v", err)
	}
}
