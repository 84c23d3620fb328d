# Single entry point for developers and CI. `make test` is the command the
# README documents and .ci/run executes.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Every Go module in the repository, found from its go.mod (not only those in
# go.work), so a module that only builds inside the workspace is caught.
MODULES := $(shell find . -name go.mod -not -path './dist/*' -not -path '*/vendor/*' -not -path '*/testdata/*' -not -path './tools/tofu/*' -printf '%h\n' | sort)
GOTEST_FLAGS ?= -race -count=1

.PHONY: help
help: ## List targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: test
test: fmt-check vet tidy-check ## gofmt check, vet, tidy check and go test -race in every module.
	@for m in $(MODULES); do \
	  echo "=== go test $$m"; \
	  (cd $$m && go test $(GOTEST_FLAGS) ./...) || exit 1; \
	done

.PHONY: fmt-check
fmt-check: ## Fail if any Go file is not gofmt-formatted.
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/vendor/*')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi

.PHONY: vet
vet: ## go vet every module.
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done

.PHONY: tidy-check
tidy-check: ## Fail if any go.mod or go.sum is not tidy (each module on its own, GOWORK=off).
	@for m in $(MODULES); do \
	  (cd $$m && GOWORK=off go mod tidy -diff >/dev/null) || { echo "go.mod/go.sum of $$m is not tidy: run (cd $$m && GOWORK=off go mod tidy)"; exit 1; }; \
	done

.PHONY: dev
dev: ## Start the whole system locally (Pub/Sub emulator, PostgreSQL, every function, push dispatcher); Ctrl-C stops it. See docs/local-stack.md.
	cd tools && go run ./cmd/dev $(DEV_FLAGS)

.PHONY: codeowners
codeowners: ## Regenerate CODEOWNERS from the function manifests (a test fails when it is stale).
	go run ./tools/cmd/codeowners

CONTRACTS_FLAGS ?=

.PHONY: contracts
contracts: ## Regenerate the event contracts (schemas, AsyncAPI, docs/events.md); refuses breaking changes to published versions (a test fails when they are stale). CONTRACTS_FLAGS="-check -since origin/main" also gates against a git revision.
	go run ./tools/cmd/contracts $(CONTRACTS_FLAGS)

.PHONY: demo
demo: ## Start the stack, send orders (one declined, one poison message), wait until quiet, check every invariant. See docs/demo.md.
	cd tools && go run ./cmd/demo $(DEMO_FLAGS)

CHAOS_ORDERS ?= 10000
CHAOS_SEED ?= 0

.PHONY: chaos
chaos: ## Chaos run: CHAOS_ORDERS orders (default 10000) through the local stack under seeded faults (CHAOS_SEED, 0 = random, printed); checks lost/double effects/order/stuck. See docs/chaos.md.
	cd tools && go run ./cmd/chaos -orders $(CHAOS_ORDERS) -seed $(CHAOS_SEED) $(CHAOS_FLAGS)

.PHONY: package
package: ## Build dist/<function>.zip for every function, with shared/ vendored (builds with GOWORK=off, offline).
	cd tools && go run ./cmd/package -root .. -out dist

.PHONY: infra-check
infra-check: ## Offline Terraform/OpenTofu checks of infra/ and environments/ (fmt, validate, plans, invariants, README examples, bootstrap) and of the pipeline (build configurations, scripts).
	cd tests && go test -count=1 ./tfprovider/... ./infra/ ./pipeline/

.PHONY: bench
bench: ## Every benchmark in one process (one PostgreSQL, one pstest, the local stack): table + `bench:` line. BENCH_QUICK=1 for CI (see docs/benchmarks.md).
	cd tools && go run ./cmd/bench $(BENCH_FLAGS)

BENCHTIME ?= 2s

.PHONY: bench-idempotency
bench-idempotency: ## Only the idempotency benchmarks, as go test -bench (BENCHTIME, default 2s).
	cd shared && go test -run '^$$' -bench . -benchtime $(BENCHTIME) ./idempotency/

FUZZTIME ?= 5s

# Every native fuzz target (func FuzzX in a _test.go file), as "dir name"
# pairs; `go test -fuzz` takes one target at a time.
FUZZ_TARGETS = grep -rEo --include='*_test.go' --exclude-dir=dist --exclude-dir=vendor --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]*' . | sed -E 's|^(.*)/[^/]*:func (Fuzz.*)$$|\1 \2|' | sort -u

.PHONY: fuzz
fuzz: ## Run every Go fuzz target for FUZZTIME each (default 5s; `make fuzz FUZZTIME=1m`). Targets: docs/failure-model.md.
	@$(FUZZ_TARGETS) | while read -r dir name; do \
	  mod=$$dir; while [ ! -f "$$mod/go.mod" ]; do mod=$$(dirname "$$mod"); done; \
	  pkg=./$${dir#"$$mod"}; pkg=$${pkg/\/\//\/}; \
	  echo "=== fuzz $$dir $$name ($(FUZZTIME))"; \
	  (cd "$$mod" && go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg") || exit 1; \
	done

.PHONY: fuzz-list
fuzz-list: ## List every Go fuzz target (directory and name) that `make fuzz` runs.
	@$(FUZZ_TARGETS)

RELAY_BENCHTIME ?= 5x

.PHONY: bench-relay
bench-relay: ## Only the outbox relay drain vs the Pub/Sub client alone, as go test -bench (make bench runs it too).
	cd shared && go test -run '^$$' -bench RelayDrain -benchtime $(RELAY_BENCHTIME) ./outbox/

.PHONY: modules
modules: ## Print every Go module directory.
	@printf '%s\n' $(MODULES)
