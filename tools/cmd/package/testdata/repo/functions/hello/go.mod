module example.com/platform/functions/hello

go 1.26.0

require example.com/platform/shared v0.0.0

replace example.com/platform/shared => ../../shared
