#!/usr/bin/env bash
# Runs neolink's benchmark suite and reports it.
#
#   bench/run.sh         full: every benchmark 6 times, in 6 interleaved passes
#                        (about 4-5 minutes on 2 cores); raw output in
#                        bench/results/full.txt (kept: benchstat can compare a
#                        later run with it), report in docs/benchmarks.md and
#                        docs/bench-rtt.svg
#   bench/run.sh quick   RTT tcp-direct, link-N-ask, link-N-ask1, -count 1,
#                        -benchtime 2000x (well under a minute); raw output in
#                        bench/results/quick.txt, report printed, docs untouched
#
# Environment: BENCH_TAGS=nolinkbench leaves out the NodeLink variants (for
# use while neonet does not build); BENCH_COUNT overrides the full run's number
# of passes (6).
# Everything runs on 127.0.0.1. Exits non-zero if a benchmark fails.
set -euo pipefail

cd "$(dirname "$0")"
mode=${1:-full}
tags=()
if [[ -n ${BENCH_TAGS:-} ]]; then
	tags=(-tags "$BENCH_TAGS")
fi
mkdir -p results

case $mode in
full)
	# Six passes of every benchmark (-count 1 each) rather than -count 6: the
	# variants then alternate in time, so a slow drift of the machine's load
	# spreads over all of them instead of skewing the ratios.
	count=${BENCH_COUNT:-6}
	out=results/full.txt
	bin=$(mktemp -d)
	trap 'rm -rf "$bin"' EXIT
	go test "${tags[@]}" -c -o "$bin/bench.test" .
	: >"$out"
	for ((pass = 1; pass <= count; pass++)); do
		echo "# pass $pass of $count" >&2
		"$bin/bench.test" -test.run '^$' -test.bench . -test.benchmem -test.count 1 -test.timeout 20m | tee -a "$out"
	done
	go run ./cmd/benchreport -o ../docs/benchmarks.md -svg ../docs/bench-rtt.svg "$out"
	;;
quick)
	out=results/quick.txt
	go test "${tags[@]}" -run '^$' -bench '^BenchmarkRTT$/^(tcp-direct|link-N-ask|link-N-ask1)$' \
		-benchmem -count 1 -benchtime 2000x -timeout 5m . | tee "$out"
	go run ./cmd/benchreport -o - -svg '' -brief "$out"
	;;
*)
	echo "usage: $0 [quick]" >&2
	exit 2
	;;
esac
