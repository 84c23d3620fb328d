// Command archive is a fixture dead-letter consumer: it appends every push
// with its CloudPubSubDeadLetterSource* headers to $ANALYTICS_JSONL_PATH.
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
)

func main() {
	var mu sync.Mutex
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		row := map[string]string{"body": string(body), "subscription": r.Header.Get("X-Goog-Pubsub-Subscription-Name")}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "cloudpubsubdeadlettersource") {
				row[k] = r.Header.Get(k)
			}
		}
		line, _ := json.Marshal(row)
		mu.Lock()
		defer mu.Unlock()
		f, err := os.OpenFile(os.Getenv("ANALYTICS_JSONL_PATH"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer f.Close()
		if _, err := f.Write(append(line, '\n')); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		panic(err)
	}
}
