// Package bench is neolink's benchmark suite: the cost of one request/reply
// round trip, one-way throughput of 1 MiB messages, 64 concurrent streams, and
// the memory of an idle Conn, for NodeLink and for reference transports (plain
// TCP, net.Pipe, hashicorp/yamux, xtaci/smux), all over loopback.
//
// It is a module of its own so that yamux and smux never enter neolink's
// module graph. Everything lives in _test.go files:
//
//	cd bench && go test -run '^$' -bench . -benchmem
//
// and `go test` alone runs each variant for a few operations as a smoke test.
// run.sh runs the full suite (-count 6) and turns the output into
// docs/benchmarks.md with cmd/benchreport; `run.sh quick` is a sub-minute
// subset. The NodeLink variants live in link_test.go; building with
// `-tags nolinkbench` leaves them out, for use while neonet does not compile.
package bench
