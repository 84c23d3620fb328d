package hello

import "example.com/platform/shared/greet"

// Greeting is what the function says.
var Greeting = greet.Hello("world")
