module example.com/platform/tools

go 1.26.0

replace example.com/platform/shared => ../shared

require example.com/platform/shared v0.0.0-00010101000000-000000000000

require go.yaml.in/yaml/v3 v3.0.6 // indirect
