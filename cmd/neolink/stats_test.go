package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHistBuckets checks that bucket bounds tile the values with the
// promised precision.
func TestHistBuckets(t *testing.T) {
	var prevHi uint64
	for i := range bucketOf(1<<40) + 1 {
		lo, hi := bucketBounds(i)
		if lo != prevHi || hi <= lo {
			t.Fatalf("bucket %d: [%d, %d) after %d", i, lo, hi, prevHi)
		}
		if lo >= 2*histSub && float64(hi-lo)/float64(lo) > 1.0/histSub+1e-12 {
			t.Fatalf("bucket %d: [%d, %d) wider than 1/%d", i, lo, hi, histSub)
		}
		if bucketOf(lo) != i || bucketOf(hi-1) != i {
			t.Fatalf("bucket %d: bucketOf(%d)=%d bucketOf(%d)=%d", i, lo, bucketOf(lo), hi-1, bucketOf(hi-1))
		}
		prevHi = hi
	}
}

// TestHistStats compares the histogram's statistics with exact ones.
func TestHistStats(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h latHist
	var ds []time.Duration
	var sum float64
	for range 100000 {
		d := time.Duration(5000 + r.ExpFloat64()*20000)
		h.record(d)
		ds = append(ds, d)
		sum += float64(d) / 1e3
	}
	slices.Sort(ds)
	if h.min != ds[0] || h.max != ds[len(ds)-1] || h.n != uint64(len(ds)) {
		t.Fatalf("min %v max %v n %d", h.min, h.max, h.n)
	}
	if mean := sum / float64(len(ds)); math.Abs(h.mean()-mean) > 1e-6*mean {
		t.Errorf("mean %v, want %v", h.mean(), mean)
	}
	var ss float64
	for _, d := range ds {
		x := float64(d)/1e3 - h.mean()
		ss += x * x
	}
	if sd := math.Sqrt(ss / float64(len(ds))); math.Abs(h.stddev()-sd) > 1e-3*sd {
		t.Errorf("stddev %v, want %v", h.stddev(), sd)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := ds[int(math.Ceil(q*float64(len(ds))))-1]
		if got := h.percentile(q); math.Abs(float64(got-exact)) > float64(exact)/histSub {
			t.Errorf("p%v = %v, want %v within 1/%d", q*100, got, exact, histSub)
		}
	}
	var empty latHist
	if empty.percentile(0.5) != 0 || empty.mean() != 0 || empty.stddev() != 0 || empty.bars(10) != nil {
		t.Error("empty histogram has statistics")
	}
	// Merging two halves gives the whole.
	var a, b latHist
	for i, d := range ds {
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	if a.n != h.n || a.min != h.min || a.max != h.max || a.percentile(0.99) != h.percentile(0.99) {
		t.Errorf("merged: n %d min %v max %v p99 %v", a.n, a.min, a.max, a.percentile(0.99))
	}
}

// TestHistBars checks that the bars cover every value once.
func TestHistBars(t *testing.T) {
	var h latHist
	for i := range 1000 {
		h.record(time.Duration(10_000 + i*i))
	}
	bs := h.bars(10)
	if len(bs) != 10 {
		t.Fatalf("%d bars, want 10", len(bs))
	}
	var total uint64
	for i, b := range bs {
		total += b.n
		if b.hi <= b.lo || (i > 0 && b.lo < bs[i-1].lo) {
			t.Errorf("bar %d: [%v, %v)", i, b.lo, b.hi)
		}
	}
	if total != 1000 || bs[0].n == 0 || bs[9].n == 0 {
		t.Errorf("bars %+v", bs)
	}
	var same latHist
	for range 3 {
		same.record(5)
	}
	if bs := same.bars(10); len(bs) != 1 || bs[0].n != 3 {
		t.Errorf("equal values: %+v", bs)
	}
	var sb strings.Builder
	printHistogram(&sb, bs, 40)
	if !strings.Contains(sb.String(), "#") {
		t.Errorf("no bars: %q", sb.String())
	}
}

// TestFmtDuration checks that short runs do not print as "0s".
func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1234 * time.Nanosecond:     "1µs",
		850 * time.Microsecond:     "850µs",
		12345 * time.Microsecond:   "12.35ms",
		1234567 * time.Microsecond: "1.235s",
		123 * time.Second:          "2m3s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
