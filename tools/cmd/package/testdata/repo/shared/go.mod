module example.com/platform/shared

go 1.26.0
