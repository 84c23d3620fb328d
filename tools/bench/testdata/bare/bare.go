// Package bare is the baseline of the cold-start benchmark (make bench):
// a functions-framework function that does nothing, built and run the way
// the local stack builds and runs the real functions (GOWORK=off, its
// cmd/main.go serving $PORT).
package bare

import (
	"net/http"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
)

func init() {
	functions.HTTP("Bare", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
}
