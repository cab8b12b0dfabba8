# neolink — build, test and benchmark entry points. `make help` lists them.

GO        ?= go
PY        ?= /usr/bin/python3
# A duration (10s) or an execution count (20000x); counts avoid Go 1.26's
# spurious end-of-fuzztime "context deadline exceeded" (golang/go#75804).
FUZZTIME  ?= 10s
RACE      ?= -race
PKGS      ?= ./...
NEOLINK   := $(CURDIR)/bin/neolink
GOTESTLOG := $(CURDIR)/bin/gotest.log
VERSION   := $(shell git describe --always --dirty 2>/dev/null)

.PHONY: help build test vet gotest go-check cc-check benchtest interop interop-neo py-deps py-deps-root py-schema py-bench fuzz generate bench bench-quick soak clean

help:
	@echo "make build        build bin/neolink (or: go install ./cmd/neolink)"
	@echo "make test         vet + race tests + bench module tests + Python interop matrix"
	@echo "                  (needs Go >= 1.26, make, gcc for -race; as root it installs gcc and the"
	@echo "                  Python packages with apt-get; RACE= tests without the race detector)"
	@echo "make interop      the Go/Python interop matrix (installs python3-msgpack/pytest via apt if root)"
	@echo "make interop-neo  Go tests against a real NEO/py cluster and neo.lib nodes (needs NEO_PEERS)"
	@echo "make fuzz         run every fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make bench        full benchmark suite (6 passes + IdleLinks, about 3 min) -> docs/benchmarks.md + plot"
	@echo "make bench-quick  every benchmark once, briefly (15–20 s); prints the targets"
	@echo "make soak         5-minute randomized stress run with faults, -race (not part of test)"
	@echo "make py-schema    copy proto/schema into the Python package"
	@echo "make py-bench     neolinkpy next to NEO/py's own client (NEOPY=<source or tarball>)"
	@echo "make generate     regenerate proto/zcatalog.go from the schema"

build: go-check
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/neolink ./cmd/neolink

# As root, the Python packages are installed first, so that the Go side of the
# interop tests runs too; otherwise gotest says it skipped them and `interop`
# stops with the command to install them.
test: vet py-deps-root gotest benchtest interop interop-neo

vet: go-check
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

# Go >= 1.26 (go.mod's version); a clear message instead of a build error.
go-check:
	@command -v $(GO) >/dev/null 2>&1 || { echo "error: '$(GO)' not found: install Go 1.26 or later (https://go.dev/dl/)" >&2; exit 1; }
	@v=$$($(GO) env GOVERSION); case "$${v#go}" in 1.2[6-9]*|1.[3-9][0-9]*|[2-9].*) ;; \
	  *) echo "error: $$v is too old: neolink needs Go 1.26 or later (https://go.dev/dl/)" >&2; exit 1;; esac

# go test -race needs cgo, hence a C compiler: installed with apt-get as
# root, as py-deps installs the Python packages; otherwise a clear stop.
cc-check: go-check
	@if [ -n "$(RACE)" ] && ! command -v "$$($(GO) env CC)" >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing gcc with apt-get (go test -race needs cgo)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; \
	    command -v "$$($(GO) env CC)" >/dev/null 2>&1 || { echo "error: no C compiler after apt-get install gcc" >&2; exit 1; }; \
	  else \
	    echo "error: go test -race needs a C compiler (cgo) and '$$($(GO) env CC)' is not installed: run 'sudo apt-get install gcc', or 'make test RACE=' to test without the race detector" >&2; exit 1; \
	  fi; \
	fi

# The Go tests of every package. The Go side of the Python interop tests
# runs when $(PY) has msgpack and pytest, and says it skipped otherwise
# (`make interop` installs them). The full -v log goes to bin/gotest.log;
# shown here: each package's result and every skipped test with its reason.
gotest: cc-check
	@mkdir -p bin
	@if [ "$$(id -u)" = 0 ]; then echo "note: as root, neonet's netns test creates network namespaces (nlA*, nlB*) joined by a veth pair and removes them; tc netem is used when the kernel has it"; fi
	@interop=; if $(PY) -c 'import msgpack, pytest' 2>/dev/null; then interop=1; fi; \
	  NEOLINK_INTEROP=$$interop PYTHON=$(PY) $(GO) test $(RACE) -timeout 20m -v $(PKGS) >$(GOTESTLOG) 2>&1; st=$$?; \
	  grep -E '^(ok|FAIL|panic:)|^[?] ' $(GOTESTLOG); \
	  awk '/^=== (RUN|CONT)/ {t=$$3} /^ +[^ ]+_test[.]go:[0-9]+: / {sub(/^ +/, ""); m[t]=$$0} \
	    /--- SKIP: / {print "  skipped " $$3 ": " m[$$3]}' $(GOTESTLOG); \
	  if [ $$st != 0 ]; then grep -E -A12 '^ *--- FAIL' $(GOTESTLOG) | head -80; echo "go test failed: full log in $(GOTESTLOG)" >&2; fi; \
	  exit $$st

# The bench module's own tests (report tool, reply checks); benchmarks run in `make bench`.
benchtest: go-check
	cd bench && $(GO) test -timeout 10m ./...

# The Python suite: the Go/Python matrix (plain and TLS), receive bounds under a
# Go flood, and `pip install` of interop/py into a fresh venv.
interop: build py-deps
	cd interop/py && NEOLINK_BIN=$(NEOLINK) $(PY) -m pytest -q -p no:cacheprovider

# Real NEO/py: the harness extracts the NEO/py, ZODB and ZConfig tarballs found
# in NEO_PEERS (or NEOPY_SRC, ZODB_SRC, ZCONFIG_SRC) under build/neopy, starts
# the clusters and nodes, runs the Go tests of interop/neo against them and
# stops every process. Without the sources it prints one "skipped" line.
NEO_PEERS ?= $(CURDIR)/../shared/peers

interop-neo: build
	$(PY) interop/neo/neopy.py run --peers $(NEO_PEERS) --build-dir build/neopy --neolink $(NEOLINK) -- \
	  $(GO) test $(RACE) -count=1 -timeout 3m ./interop/neo/

# Debian's python3 with python3-msgpack and python3-pytest, plus what packaging
# and TLS tests use: python3-setuptools and python3-venv (offline pip install)
# and openssl (test certificates). PyPI is not used.
py-deps-root:
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory py-deps PY=$(PY); fi

py-deps:
	@if ! $(PY) -c 'import msgpack, pytest, setuptools, ensurepip' 2>/dev/null \
	    || ! command -v openssl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing python3-msgpack python3-pytest python3-setuptools python3-venv openssl with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      python3-msgpack python3-pytest python3-setuptools python3-venv openssl >/dev/null \
	      || { echo "error: apt-get install of the Python packages failed" >&2; exit 1; }; \
	    $(PY) -c 'import msgpack, pytest, setuptools, ensurepip' 2>/dev/null || { \
	      echo "error: $(PY) still cannot import msgpack, pytest, setuptools and ensurepip after apt-get:" \
	        "Debian's packages serve /usr/bin/python3 (use PY=/usr/bin/python3)" >&2; exit 1; }; \
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
	$(GO) test -run '^$$' -fuzz '^FuzzChunkedReaderN$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzChunkedReaderM$$' -fuzztime $(FUZZTIME) ./proto
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME) ./handshake
	$(GO) test -run '^$$' -fuzz '^FuzzNodeLink$$' -fuzztime $(FUZZTIME) ./neonet

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
	NEOLINK_SOAK=$${NEOLINK_SOAK:-5m} $(GO) test -race -run '^TestSoak$$' -timeout 30m -v ./neonet

clean:
	rm -rf bin
