package fftest_test

import (
	"net/http"
	"testing"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/platform/shared/testing/fftest"
)

func init() {
	functions.HTTP("Teapot", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
}

func TestStartServesTheRegisteredFunction(t *testing.T) {
	url := fftest.Start(t, "Teapot")
	if again := fftest.Start(t, "Teapot"); again != url {
		t.Fatalf("second Start returned %s, want the running %s", again, url)
	}
	resp, err := fftest.Client.Post(url, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
