module example.com/platform/tools

go 1.26.0

replace example.com/platform/shared => ../shared
