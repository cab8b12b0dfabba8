module github.com/neolink/neolink/bench

go 1.26.0

require (
	github.com/hashicorp/yamux v0.1.2
	github.com/neolink/neolink v0.0.0
	github.com/xtaci/smux v1.5.56
)

// benchstat and what it imports, pinned for the tool directive below:
// bench/run.sh runs `go tool benchstat`, which needs no network once the
// module cache holds these.
require (
	github.com/aclements/go-moremath v0.0.0-20210112150236-f10218a38794 // indirect
	golang.org/x/perf v0.0.0-20260908200009-22c9c6c9d4da // indirect
)

// Modules that neolink's packages import, listed so that this module builds
// against the replaced parent without `go mod tidy`.
require (
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/tinylib/msgp v1.6.5 // indirect
)

replace github.com/neolink/neolink => ../

tool golang.org/x/perf/cmd/benchstat
