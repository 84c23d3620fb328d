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

.PHONY: demo
demo: ## Start the stack, send orders (one declined, one poison message), wait until quiet, check every invariant. See docs/demo.md.
	cd tools && go run ./cmd/demo $(DEMO_FLAGS)

.PHONY: package
package: ## Build dist/<function>.zip for every function, with shared/ vendored (builds with GOWORK=off, offline).
	cd tools && go run ./cmd/package -root .. -out dist

.PHONY: infra-check
infra-check: ## Offline Terraform/OpenTofu checks of infra/ (fmt, validate, plans, invariants, README examples).
	cd tests && go test -count=1 ./tfprovider/... ./infra/

BENCHTIME ?= 2s

.PHONY: bench
bench: ## Idempotency and baseline benchmarks against one PostgreSQL (see docs/benchmarks.md).
	cd shared && go test -run '^$$' -bench . -benchtime $(BENCHTIME) ./idempotency/

RELAY_BENCHTIME ?= 5x

.PHONY: bench-relay
bench-relay: ## Outbox relay drain vs the Pub/Sub client alone, PostgreSQL + pstest (see docs/benchmarks.md).
	cd shared && go test -run '^$$' -bench RelayDrain -benchtime $(RELAY_BENCHTIME) ./outbox/

.PHONY: modules
modules: ## Print every Go module directory.
	@printf '%s\n' $(MODULES)
