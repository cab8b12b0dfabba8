#!/usr/bin/env bash
# Runs neolink's benchmark suite and reports it.
#
#   bench/run.sh         full: 6 passes, each running every benchmark once
#                        (-count 1, -benchtime 250ms), then BenchmarkIdleLinks
#                        3 times (one op each: 10,000 link pairs per variant);
#                        about 3 minutes on 2 cores. Raw output in
#                        bench/results/full.txt (kept: benchstat can compare a
#                        later run with it), report in docs/benchmarks.md and
#                        docs/bench-rtt.svg, benchstat's summary included.
#   bench/run.sh quick   every benchmark but IdleLinks once, -benchtime 100ms
#                        (15–20 s); raw output in bench/results/quick.txt,
#                        a brief report (targets and tables) printed, docs
#                        untouched. Quick numbers are rough: use them to see
#                        that everything runs, not to judge a target.
#
# Environment: BENCH_TAGS=nolinkbench leaves out the NodeLink variants (for
# use while neonet does not build); BENCH_COUNT overrides the number of full
# passes (6), BENCH_TIME their -benchtime (250ms).
# Everything runs on 127.0.0.1. Exits non-zero if a benchmark fails.
# benchstat is pinned in bench/go.mod (a tool directive) and run with
# `go tool benchstat`: no network is needed once the module cache is warm.
set -euo pipefail

cd "$(dirname "$0")"
mode=${1:-full}
tags=()
if [[ -n ${BENCH_TAGS:-} ]]; then
	tags=(-tags "$BENCH_TAGS")
fi
mkdir -p results

# Every benchmark but IdleLinks, which opens 10,000 link pairs per op and
# measures memory rather than time: it runs apart, a fixed number of ops.
timed='^Benchmark(RTT|Throughput1MiB|Throughput64KiB|Parallel64|Parallel64_4KiB|IdleConnMemory)$'

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test "${tags[@]}" -c -o "$bin/bench.test" .

case $mode in
full)
	# Passes of every benchmark (-count 1 each) rather than one -count 6: the
	# variants then alternate in time, so a slow drift of the machine's load
	# spreads over all of them instead of skewing the ratios.
	count=${BENCH_COUNT:-6}
	benchtime=${BENCH_TIME:-250ms}
	out=results/full.txt
	start=$SECONDS
	: >"$out"
	for ((pass = 1; pass <= count; pass++)); do
		echo "# pass $pass of $count ($((SECONDS - start)) s so far)" >&2
		"$bin/bench.test" -test.run '^$' -test.bench "$timed" -test.benchmem \
			-test.count 1 -test.benchtime "$benchtime" -test.timeout 20m | tee -a "$out"
	done
	echo "# IdleLinks" >&2
	"$bin/bench.test" -test.run '^$' -test.bench '^BenchmarkIdleLinks$' -test.benchmem \
		-test.count 3 -test.benchtime 1x -test.timeout 10m | tee -a "$out"
	echo "# benchmarks took $((SECONDS - start)) s" >&2
	go run ./cmd/benchreport -o ../docs/benchmarks.md -svg ../docs/bench-rtt.svg "$out"
	;;
quick)
	out=results/quick.txt
	"$bin/bench.test" -test.run '^$' -test.bench "$timed" -test.benchmem \
		-test.count 1 -test.benchtime 100ms -test.timeout 5m | tee "$out"
	go run ./cmd/benchreport -o - -svg '' -brief "$out"
	;;
*)
	echo "usage: $0 [quick]" >&2
	exit 2
	;;
esac
