package hello

import "testing"

func TestGreeting(t *testing.T) {
	if Greeting != "hello world" {
		t.Fatal(Greeting)
	}
}
