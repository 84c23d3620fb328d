// Package tools holds developer and operator programs (under cmd/): the
// CODEOWNERS generator, the local stack and the operator CLI.
package tools
