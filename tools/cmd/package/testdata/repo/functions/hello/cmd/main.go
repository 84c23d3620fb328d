package main

import (
	"fmt"

	"example.com/platform/functions/hello"
)

func main() { fmt.Println(hello.Greeting) }
