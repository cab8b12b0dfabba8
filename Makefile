# neolink — build, test and benchmark entry points. `make help` lists them.

GO        ?= go
PY        ?= /usr/bin/python3
FUZZTIME  ?= 10s
GOBIN     := $(shell $(GO) env GOPATH)/bin
NEOLINK   := $(CURDIR)/bin/neolink

.PHONY: help build test vet gotest benchtest interop py-deps fuzz generate bench bench-quick soak clean

help:
	@echo "make build        build bin/neolink"
	@echo "make test         vet + race tests + bench module tests + Python interop matrix"
	@echo "make interop      the Go/Python interop matrix (installs python3-msgpack/pytest via apt if root)"
	@echo "make fuzz         run every fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make bench        full benchmark suite (-count 6) -> docs/benchmarks.md + plot"
	@echo "make bench-quick  a short benchmark subset (< 1 min)"
	@echo "make soak         long randomized stress run with -race (not part of test)"
	@echo "make generate     regenerate proto/zcatalog.go from the schema"

build:
	$(GO) build -o bin/neolink ./cmd/neolink

test: vet gotest benchtest interop

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

gotest: py-deps
	NEOLINK_INTEROP=1 PYTHON=$(PY) $(GO) test -race -timeout 20m ./...

# The bench module's own tests (report tool, reply checks); benchmarks run in `make bench`.
benchtest:
	cd bench && $(GO) test -timeout 10m ./...

# The Python suite: the Go/Python matrix (plain and TLS), receive bounds under a
# Go flood, and `pip install` of interop/py into a fresh venv.
interop: build py-deps
	cd interop/py && NEOLINK_BIN=$(NEOLINK) $(PY) -m pytest -q -p no:cacheprovider

# Debian's python3 with python3-msgpack and python3-pytest, plus what packaging
# and TLS tests use: python3-setuptools and python3-venv (offline pip install)
# and openssl (test certificates). PyPI is not used.
py-deps:
	@if ! $(PY) -c 'import msgpack, pytest, setuptools, ensurepip' 2>/dev/null \
	    || ! command -v openssl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing python3-msgpack python3-pytest python3-setuptools python3-venv openssl with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      python3-msgpack python3-pytest python3-setuptools python3-venv openssl >/dev/null; \
	  else \
	    echo "error: $(PY) needs msgpack, pytest, setuptools and venv, and openssl is needed: run" \
	      "'sudo apt-get install python3-msgpack python3-pytest python3-setuptools python3-venv openssl'" >&2; exit 1; \
	  fi; \
	fi

# Refresh the schema copy that interop/py ships as package data (a test checks
# that it equals proto/schema/neo-v5.schema byte for byte).
py-schema:
	cp proto/schema/neo-v5.schema interop/py/neolinkpy/neo-v5.schema

# neolinkpy next to NEO/py's own connection classes against `neolink serve`:
# make py-bench NEOPY=path/to/neoppod.tar.gz (or its source directory).
py-bench: build
	@if [ -z "$(NEOPY)" ]; then echo "usage: make py-bench NEOPY=<NEO/py source dir or .tar.gz>" >&2; exit 2; fi
	$(PY) interop/py/bench_vs_neopy.py --neolink $(NEOLINK) --neopy $(NEOPY) --tls

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzPacketReaderN$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzPacketReaderM$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeArgs$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME) ./handshake

generate:
	$(GO) generate ./...

$(GOBIN)/benchstat:
	$(GO) install golang.org/x/perf/cmd/benchstat@latest

bench: $(GOBIN)/benchstat
	PATH="$(GOBIN):$$PATH" bash bench/run.sh

bench-quick:
	bash bench/run.sh quick

soak:
	NEOLINK_SOAK=$${NEOLINK_SOAK:-60s} $(GO) test -race -run '^TestSoak$$' -timeout 30m -v ./neonet

clean:
	rm -rf bin
