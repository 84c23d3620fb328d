// Package fftest serves a function registered with functions-framework-go
// the way Cloud Run functions does, so tests reach it over real HTTP
// through the framework's own server.
package fftest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

var (
	mu      sync.Mutex
	servers = map[string]string{}
)

// Start serves the function registered under target (its entry point) and
// returns its base URL. The framework's server cannot be stopped, so one
// server per target is started per test binary and shared by its tests.
func Start(tb testing.TB, target string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if url, ok := servers[target]; ok {
		return url
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	// The framework reads FUNCTION_TARGET when it builds its server.
	prev, had := os.LookupEnv("FUNCTION_TARGET")
	os.Setenv("FUNCTION_TARGET", target)
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort("127.0.0.1", port) }()
	url := "http://127.0.0.1:" + port
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-errc:
			tb.Fatalf("fftest: framework server for %s: %v", target, err)
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("fftest: framework server for %s did not start: %v", target, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if had {
		os.Setenv("FUNCTION_TARGET", prev)
	} else {
		os.Unsetenv("FUNCTION_TARGET")
	}
	servers[target] = url
	return url
}

// Client is an HTTP client with a timeout suited to tests.
var Client = &http.Client{Timeout: 30 * time.Second}
