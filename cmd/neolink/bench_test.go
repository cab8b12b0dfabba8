package main

import (
	"encoding/json"
	"testing"
	"time"
)

// TestBenchQuick runs "bench -quick -json" and checks its rows.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("bench -quick takes a few seconds")
	}
	r := neolink(t, 60*time.Second, nil, "bench", "-quick", "-json")
	mustSucceed(t, r, "bench -quick -json")
	var rows []benchRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	want := []string{"tcp", "ask/N", "ask/M", "ask1/N", "ask1/M"}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, row := range rows {
		if row.Variant != want[i] || row.RTTMicros <= 0 || row.Ratio <= 0 || row.Ops <= 0 || row.AllocsPerOp < 0 {
			t.Errorf("row %d: %+v", i, row)
		}
	}
	if rows[0].Ratio != 1 {
		t.Errorf("tcp ratio %v, want 1", rows[0].Ratio)
	}
	if r.elapsed > 30*time.Second {
		t.Errorf("bench -quick took %v", r.elapsed)
	}
}
