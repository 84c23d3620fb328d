module example.com/fixture/echo

go 1.26.0
