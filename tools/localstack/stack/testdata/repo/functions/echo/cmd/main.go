// Command echo is a fixture function: it appends every push to the file
// $ECHO_OUT as one JSON line and answers 204, or 500 when the body is
// "poison". GET answers 405, like a real push handler.
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
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
		line, _ := json.Marshal(map[string]string{
			"function": os.Getenv("FUNCTION_NAME"),
			"mode":     os.Getenv("ECHO_MODE"),
			"id":       r.Header.Get("X-Goog-Pubsub-Message-Id"),
			"attempt":  r.Header.Get("X-Goog-Pubsub-Delivery-Attempt"),
			"body":     string(body),
		})
		if string(body) == "poison" {
			http.Error(w, "poison", http.StatusInternalServerError)
			return
		}
		mu.Lock()
		f, err := os.OpenFile(os.Getenv("ECHO_OUT"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.Write(append(line, '\n'))
			f.Close()
		}
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		panic(err)
	}
}
