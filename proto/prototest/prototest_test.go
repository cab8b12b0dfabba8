package prototest

import (
	"math/rand/v2"
	"testing"

	"github.com/neolink/neolink/proto"
)

func TestMapKeysUnique(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for range 2000 {
		m := New(rng, (*proto.RequestIdentification)(nil).MsgCode()).(*proto.RequestIdentification)
		seen := map[string]bool{}
		for _, kv := range m.Extra {
			if seen[kv.Key] {
				t.Fatalf("duplicate key %q", kv.Key)
			}
			seen[kv.Key] = true
		}
	}
}

func TestFillIsValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, code := range proto.Codes() {
		for range 20 {
			m := New(rng, code)
			if _, err := proto.Decode(code, m.AppendArgs(nil)); err != nil {
				t.Fatalf("%s: random value does not decode: %v", proto.Name(m), err)
			}
		}
	}
}
