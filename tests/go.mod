module example.com/platform/tests

go 1.26.0

replace example.com/platform/shared => ../shared
