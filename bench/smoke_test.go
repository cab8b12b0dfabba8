package bench

import (
	"slices"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
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
	check("Throughput", slices.Concat(throughput1MiBOrder, throughput64KiBOrder), keys(throughputVariants))
	check("Parallel64", parallelOrder, keys(parallelVariants))
	check("IdleLinks", idleOrder, keys(idleVariants))
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
	for _, tc := range []struct {
		bench string
		size  int
		order []string
	}{{"Throughput1MiB", size1MiB, throughput1MiBOrder}, {"Throughput64KiB", size64KiB, throughput64KiBOrder}} {
		for _, name := range tc.order {
			setup := throughputVariants[name]
			if setup == nil {
				continue
			}
			t.Run(tc.bench+"/"+name, func(t *testing.T) {
				const n = 3
				send, finish := setup(newEnv(t), tc.size, n)
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
	}
	for _, tc := range []struct {
		bench string
		sh    shape
	}{{"Parallel64", small}, {"Parallel64_4KiB", answers4KiB}} {
		for _, name := range parallelOrder {
			setup := parallelVariants[name]
			if setup == nil {
				continue
			}
			t.Run(tc.bench+"/"+name, func(t *testing.T) {
				e := newEnv(t)
				rts := setup(e, parallelWorkers, tc.sh)
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
}

// TestWireSizes checks that the 4 KiB stream variants carry what NodeLink
// sends: an N packet is its 10-byte header and msgpack args, so the answer
// is a little over 4 KiB and the request a few dozen bytes; and the sizes do
// not depend on the stamped sequence number.
func TestWireSizes(t *testing.T) {
	if r := answers4KiB.req; r <= 10 || r > 64 {
		t.Errorf("AskObject packet of %d bytes", r)
	}
	if r := answers4KiB.resp; r <= answer4KiB+10 || r > answer4KiB+128 {
		t.Errorf("AnswerObject packet with 4 KiB Data is %d bytes", r)
	}
	big := packetSizeN(&proto.AnswerObject{OID: 1 << 60, Serial: 1 << 60, Data: make([]byte, answer4KiB)})
	if big != answers4KiB.resp {
		t.Errorf("answer size depends on the oid: %d vs %d", big, answers4KiB.resp)
	}
	if ask := packetSizeN(&proto.AskObject{OID: 1 << 60}); ask != answers4KiB.req {
		t.Errorf("request size depends on the oid: %d vs %d", ask, answers4KiB.req)
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
