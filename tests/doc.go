// Package tests holds the repository-wide checks: infrastructure tests of
// the Terraform modules and environments, and end-to-end tests of the local
// pipeline. Its subpackages are run by `make test`.
package tests
