# latchkey — see README.md. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/latchkey/latchkey/internal/version.Version=$(VERSION)
BIN := bin
# Debian packages the tests use: a real sshd + Linux-PAM for the helper's end-to-end test,
# PostgreSQL for the templates' database-lease test, iproute2 (ip) for the helper's test of
# real interface addresses (not in minimal images). unshare and mount come with util-linux
# and mount, which every Debian system has. lintian checks the built .debs,
# rpm lists the built .rpms;
# systemd-container (systemd-nspawn) boots a real systemd for the unit's
# tests; packer validates packaging/packer.
TEST_DEBS := openssh-server openssh-client libpam-modules libpam-runtime postgresql iproute2 \
	lintian rpm systemd-container packer
STATICCHECK_VERSION := v0.8.2
GO_TEST_FLAGS ?= -count=1 -timeout 25m
# Fuzz budget per target: an execution count, not a duration. A duration races Go's fuzzing
# coordinator at its deadline on a busy machine ("context deadline exceeded" with no failing input,
# golang/go#75804); a count cannot. 20000x is ~3-9 s per target on 2 cores.
FUZZ_TIME ?= 20000x

.PHONY: all build vault deps test demo bench lint package clean

all: build

## build: static binaries of both commands into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/latchkey-ssh-helper ./cmd/latchkey-agent

## vault: the test-only Vault server binary (rebuilt only when test/vault changes)
vault: $(BIN)/vault

$(BIN)/vault: test/vault/go.mod test/vault/go.sum test/vault/main.go
	@echo "building Vault from test/vault (cold: ~15 minutes on 2 cores; warm: ~1 minute)"
	cd test/vault && $(GO) build -mod=mod -trimpath -ldflags='-s -w' -o ../../$(BIN)/vault .
	@touch $@

## deps: Debian packages the tests need (installed only when running as root and missing)
deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "not root: the tests that need$$missing will fail; install them or run as root"; \
	  fi; \
	fi

## test: everything — unit, integration against a real Vault, end-to-end
test: deps vault
	$(GO) mod download
	$(GO) vet ./...
	$(GO) test $(GO_TEST_FLAGS) $$($(GO) list ./... | grep -v '/test/fault$$')
	@# The in-process packages again under the race detector: reloads hand
	@# logins, tokens and templates between goroutines.
	$(GO) test -race $(GO_TEST_FLAGS) ./agent/... ./internal/... ./pam/...
	@# The fault scenarios print one line of figures each ("fault ...").
	@out=$$($(GO) test $(GO_TEST_FLAGS) -v ./test/fault 2>&1); rc=$$?; \
	  echo "$$out" | grep -E '^(fault |--- FAIL|FAIL|ok|panic)'; \
	  if [ $$rc -ne 0 ]; then echo "$$out" | tail -200; exit $$rc; fi
	@# Fuzz targets, bounded ($(FUZZ_TIME) each); their corpus is in testdata/fuzz.
	@for t in ./pam:FuzzReadSecret ./pam:FuzzLoadConfig ./pam:FuzzVaultSSHHelperAgrees ./agent/config:FuzzLoad ./agent/config:FuzzReaderAgreesWithHCL ./agent/template/funcs:FuzzStringHelpers; do \
	  echo "fuzz $${t#*:} ($(FUZZ_TIME))"; \
	  out=$$($(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZ_TIME) $${t%%:*} 2>&1) || { echo "$$out"; exit 1; }; \
	done

## demo: start a local Vault dev server and walk through the main job
demo: vault build
	$(GO) run ./test/demo -bin $(BIN)

## bench: latchkey beside vault-ssh-helper 0.2.4 and Vault Agent, measured in the same run: one
## table, written to bench/RESULTS.md; BENCH_ASSERT=1 fails on a missed goal. Sizes: BENCH_LOGINS,
## BENCH_STORM, BENCH_WINDOW, BENCH_FLEET, BENCH_GROWTH (see test/bench/main.go); VSH_BIN or VSH_SRC
## pick the reference helper. GNU time measures a helper's peak RSS; PostgreSQL, the database lease;
## perf, when installed, profiles the helper's logins.
BENCH_DEBS := time postgresql
bench: vault build
	@$(MAKE) --no-print-directory deps TEST_DEBS="$(BENCH_DEBS)"
	$(GO) run ./test/bench -bin $(BIN)

## lint: gofmt, go vet, staticcheck
lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	@test -x $(BIN)/staticcheck || GOBIN=$(CURDIR)/$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(BIN)/staticcheck ./...

## package: deb and rpm packages of both commands into dist/; the version
## comes from the git tag (v1.2.3 → 1.2.3); untagged: make package VERSION=1.0.0
package: build
	VERSION=$(VERSION) ./packaging/build.sh

clean:
	rm -rf dist $(BIN)/latchkey-ssh-helper $(BIN)/latchkey-agent $(BIN)/staticcheck $(BIN)/nfpm
	@echo "kept $(BIN)/vault (slow to rebuild); rm it by hand if you must"
