package logbuf

import (
	"fmt"
	"sync"
	"testing"
)

func TestConcurrentWritesAreAllKept(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "%d-%d\n", i, j)
			}
		}()
	}
	wg.Wait()
	if n := len(b.String()); n < 8*100*4 {
		t.Fatalf("%d bytes", n)
	}
}

func TestTail(t *testing.T) {
	var b Buffer
	b.Write([]byte("a\nb\nc"))
	if got := b.Tail(2); got != "b\nc" {
		t.Fatalf("tail %q", got)
	}
	if got := b.Tail(10); got != "a\nb\nc" {
		t.Fatalf("tail %q", got)
	}
}
