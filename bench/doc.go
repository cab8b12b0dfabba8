// Package bench is neolink's benchmark suite, for NodeLink and for reference
// transports (plain TCP, net.Pipe, hashicorp/yamux, xtaci/smux), all over
// loopback:
//
//   - BenchmarkRTT: one request/reply round trip, with the server written
//     the ways real servers are (inline, an Accept loop with a goroutine per
//     Conn, a goroutine per request, a Conn per request) and with 4 KiB
//     answers, each next to the TCP server of the same shape;
//   - BenchmarkThroughput1MiB, BenchmarkThroughput64KiB: one-way throughput;
//   - BenchmarkParallel64, BenchmarkParallel64_4KiB: 64 concurrent streams;
//   - BenchmarkIdleLinks: heap and goroutines of 10,000 idle link pairs;
//   - BenchmarkIdleConnMemory: heap of 10,000 idle Conns on one link.
//
// It is a module of its own so that yamux, smux and benchstat never enter
// neolink's module graph. The benchmarks live in _test.go files:
//
//	cd bench && go test -run '^$' -bench . -benchmem
//
// and `go test` alone runs each variant for a few operations as a smoke test.
// run.sh runs the full suite (6 passes of -count 1 each, then IdleLinks 3
// times) and turns the output into docs/benchmarks.md with cmd/benchreport;
// `run.sh quick` runs every benchmark but IdleLinks once, briefly. The
// NodeLink variants live in link_test.go; building with `-tags nolinkbench`
// leaves them out, for use while neonet does not compile.
package bench
