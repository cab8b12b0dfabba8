# neolink — build, test and benchmark entry points. `make help` lists them.

GO        ?= go
PY        ?= /usr/bin/python3
FUZZTIME  ?= 10s
NEOLINK   := $(CURDIR)/bin/neolink

.PHONY: help build test vet gotest benchtest interop interop-neo py-deps fuzz generate bench bench-quick soak clean

help:
	@echo "make build        build bin/neolink"
	@echo "make test         vet + race tests + bench module tests + Python interop matrix"
	@echo "make interop      the Go/Python interop matrix (installs python3-msgpack/pytest via apt if root)"
	@echo "make interop-neo  Go tests against a real NEO/py cluster and neo.lib nodes (needs NEO_PEERS)"
	@echo "make fuzz         run every fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make bench        full benchmark suite (6 passes + IdleLinks, about 3 min) -> docs/benchmarks.md + plot"
	@echo "make bench-quick  every benchmark once, briefly (15–20 s); prints the targets"
	@echo "make soak         long randomized stress run with -race (not part of test)"
	@echo "make generate     regenerate proto/zcatalog.go from the schema"

build:
	$(GO) build -o bin/neolink ./cmd/neolink

test: vet gotest benchtest interop interop-neo

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

gotest: py-deps
	NEOLINK_INTEROP=1 PYTHON=$(PY) $(GO) test -race -timeout 20m ./...

# The bench module's own tests (report tool, reply checks); benchmarks run in `make bench`.
benchtest:
	cd bench && $(GO) test -timeout 10m ./...

interop: build py-deps
	cd interop/py && NEOLINK_BIN=$(NEOLINK) $(PY) -m pytest -q -p no:cacheprovider

# Real NEO/py: the harness extracts the NEO/py, ZODB and ZConfig tarballs found
# in NEO_PEERS (or NEOPY_SRC, ZODB_SRC, ZCONFIG_SRC) under build/neopy, starts
# the clusters and nodes, runs the Go tests of interop/neo against them and
# stops every process. Without the sources it prints one "skipped" line.
NEO_PEERS ?= $(CURDIR)/../shared/peers

interop-neo: build
	$(PY) interop/neo/neopy.py run --peers $(NEO_PEERS) --build-dir build/neopy --neolink $(NEOLINK) -- \
	  $(GO) test -race -count=1 -timeout 3m ./interop/neo/

# Debian's python3 with python3-msgpack and python3-pytest; PyPI is not used.
py-deps:
	@if ! $(PY) -c 'import msgpack, pytest' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing python3-msgpack python3-pytest with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-msgpack python3-pytest >/dev/null; \
	  else \
	    echo "error: $(PY) needs msgpack and pytest: run 'sudo apt-get install python3-msgpack python3-pytest'" >&2; exit 1; \
	  fi; \
	fi

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzPacketReaderN$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzPacketReaderM$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeArgs$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzChunkedReaderN$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzChunkedReaderM$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME) ./handshake

generate:
	$(GO) generate ./...

# benchstat is pinned in bench/go.mod (tool directive) and run by the report
# tool as `go tool benchstat`: nothing to install, no network once the module
# cache is warm.
bench:
	bash bench/run.sh

bench-quick:
	bash bench/run.sh quick

soak:
	NEOLINK_SOAK=$${NEOLINK_SOAK:-60s} $(GO) test -race -run '^TestSoak$$' -timeout 30m -v ./neonet

clean:
	rm -rf bin
