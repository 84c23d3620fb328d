package idempotency_test

import (
	"os"
	"testing"

	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
