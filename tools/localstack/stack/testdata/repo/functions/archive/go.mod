module example.com/fixture/archive

go 1.26.0
