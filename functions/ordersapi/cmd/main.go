// Command cmd runs the orders API locally with the Functions Framework:
// go run ./functions/ordersapi/cmd. It listens on $PORT (default 8080) and
// serves FUNCTION_TARGET (default OrdersAPI) on every path; configuration
// comes from the environment, as in production (see package ordersapi).
package main

import (
	"log"

	"example.com/platform/functions/ordersapi"
	"example.com/platform/shared/app/localrun"
)

func main() {
	if err := localrun.Serve(ordersapi.EntryPoint); err != nil {
		log.Fatalf("ordersapi: %v", err)
	}
}
