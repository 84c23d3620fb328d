//go:build !gcp

package infra_test

import "testing"

// TestApplyLive is compiled only with the gcp build tag; without it, this
// stand-in says how to run the apply-level tests.
func TestApplyLive(t *testing.T) {
	t.Skip("apply-level tests against a real project are behind the gcp build tag: " +
		"INFRA_REAL_PROVIDER=1 GOOGLE_CLOUD_PROJECT=<sandbox> go test -tags gcp -run TestApplyLive ./infra/")
}

// TestDeployDevLive is compiled only with the gcp build tag.
func TestDeployDevLive(t *testing.T) {
	t.Skip("the live deploy of dev is behind the gcp build tag: " +
		"INFRA_REAL_PROVIDER=1 GOOGLE_CLOUD_PROJECT=<bootstrapped sandbox> INFRA_LIVE_INVOKER=user:<you> go test -tags gcp -timeout 90m -run TestDeployDevLive ./infra/")
}
