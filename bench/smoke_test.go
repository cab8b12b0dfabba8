package bench

import (
	"slices"
	"testing"
	"time"
)

// TestRegistry checks that every registered variant has a place in the
// canonical order (so none is silently never run).
func TestRegistry(t *testing.T) {
	check := func(kind string, order []string, names []string) {
		for _, n := range names {
			if !slices.Contains(order, n) {
				t.Errorf("%s variant %q is registered but not in the canonical order", kind, n)
			}
		}
	}
	check("RTT", rttOrder, keys(rttVariants))
	check("Throughput1MiB", throughputOrder, keys(throughputVariants))
	check("Parallel64", parallelOrder, keys(parallelVariants))
	if len(rttVariants) < len(rttOrder) {
		t.Logf("%d of %d RTT variants built (link variants need neonet; see -tags nolinkbench)", len(rttVariants), len(rttOrder))
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestSmoke runs every variant for a few operations with the benchmarks'
// setup, checks and teardown (including the goroutine-leak check).
func TestSmoke(t *testing.T) {
	for _, name := range rttOrder {
		setup := rttVariants[name]
		if setup == nil {
			continue
		}
		t.Run("RTT/"+name, func(t *testing.T) {
			rt := setup(newEnv(t))
			for i := range 100 {
				if err := rt(i); err != nil {
					t.Fatalf("round trip %d: %v", i, err)
				}
			}
		})
	}
	for _, name := range throughputOrder {
		setup := throughputVariants[name]
		if setup == nil {
			continue
		}
		t.Run("Throughput1MiB/"+name, func(t *testing.T) {
			const n = 3
			send, finish := setup(newEnv(t), n)
			for i := range n {
				if err := send(i); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			if err := finish(); err != nil {
				t.Fatalf("finish: %v", err)
			}
		})
	}
	for _, name := range parallelOrder {
		setup := parallelVariants[name]
		if setup == nil {
			continue
		}
		t.Run("Parallel64/"+name, func(t *testing.T) {
			e := newEnv(t)
			rts := setup(e, parallelWorkers)
			const n = 20 * parallelWorkers
			lat, elapsed, err := runParallel(e, rts, n, func() {})
			if err != nil {
				t.Fatal(err)
			}
			if len(lat) != n || elapsed <= 0 || slices.Contains(lat, 0) {
				t.Fatalf("got %d latencies (want %d), elapsed %v", len(lat), n, elapsed)
			}
		})
	}
}

// TestPercentiles checks the nearest-rank percentiles of BenchmarkParallel64.
func TestPercentiles(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i))
	}
	if p50, p99 := percentiles(lat); p50 != 50 || p99 != 99 {
		t.Errorf("1..100: p50 %v p99 %v, want 50 99", p50, p99)
	}
	if p50, p99 := percentiles([]time.Duration{7}); p50 != 7 || p99 != 7 {
		t.Errorf("one sample: p50 %v p99 %v", p50, p99)
	}
	if p50, p99 := percentiles(nil); p50 != 0 || p99 != 0 {
		t.Errorf("none: p50 %v p99 %v", p50, p99)
	}
}
