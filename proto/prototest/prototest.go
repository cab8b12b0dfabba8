// Package prototest generates random, schema-valid NEO messages for property
// tests, fuzz seeds and cross-language codec checks.
//
// It uses reflection and is meant for tests and tools, not for hot paths.
package prototest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"

	"github.com/tinylib/msgp/msgp"

	"github.com/neolink/neolink/proto"
)

// Fill overwrites every field of msg (a pointer to a catalog struct) with
// random values valid for its schema type: enums in range, 8-byte ids, node
// ids in int32, optionals both present and absent, lists and maps of 0–4
// entries, map keys unique. Empty byte slices and lists are left nil, as decoding produces
// them, so a decoded copy compares equal with reflect.DeepEqual.
func Fill(rng *rand.Rand, msg proto.Msg) {
	fill(rng, reflect.ValueOf(msg).Elem(), 0)
}

// New returns a new message with code filled with random values, or nil if
// the code is not in the catalog.
func New(rng *rand.Rand, code uint16) proto.Msg {
	m := proto.New(code)
	if m != nil {
		Fill(rng, m)
	}
	return m
}

var (
	rawType   = reflect.TypeFor[proto.Raw]()
	validType = reflect.TypeFor[interface{ Valid() bool }]()
)

func fill(rng *rand.Rand, v reflect.Value, depth int) {
	t := v.Type()
	switch {
	case t == rawType:
		v.SetBytes(randomRaw(rng, depth))
		return
	case t.Kind() == reflect.Uint8 && t.Implements(validType):
		for {
			v.SetUint(uint64(rng.IntN(16)))
			if v.Interface().(interface{ Valid() bool }).Valid() {
				return
			}
		}
	case t.Kind() == reflect.Struct && t.NumField() == 2 && t.Field(0).Name == "V" && t.Field(1).Name == "Valid":
		v.SetZero()
		if rng.IntN(3) > 0 {
			v.Field(1).SetBool(true)
			fill(rng, v.Field(0), depth+1)
		}
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 1)
	case reflect.Float64:
		v.SetFloat(math.Round(rng.NormFloat64()*1e9) / 1e3)
	case reflect.Int64, reflect.Int32:
		v.SetInt(randomInt(rng, t.Bits()))
	case reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(randomUint(rng, t.Bits()))
	case reflect.String:
		v.SetString(randomText(rng))
	case reflect.Slice:
		n := rng.IntN(5)
		if n == 0 {
			v.SetZero()
			return
		}
		if t.Elem().Kind() == reflect.Uint8 {
			b := make([]byte, n+rng.IntN(40))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			v.SetBytes(b)
			return
		}
		s := reflect.MakeSlice(t, n, n)
		isMap := t.Elem().Kind() == reflect.Struct && t.Elem().NumField() == 2 && t.Elem().Field(0).Name == "Key"
		seen := map[string]bool{}
		kept := 0
		for range n {
			e := s.Index(kept)
			fill(rng, e, depth+1)
			if isMap {
				// Schema maps are dicts on the NEO/py side: keys must be unique.
				k := fmt.Sprint(e.Field(0).Interface())
				if seen[k] {
					continue
				}
				seen[k] = true
			}
			kept++
		}
		if kept == 0 {
			v.SetZero()
			return
		}
		v.Set(s.Slice(0, kept))
	case reflect.Struct:
		for i := range t.NumField() {
			fill(rng, v.Field(i), depth+1)
		}
	default:
		panic("prototest: unhandled kind " + t.String())
	}
}

// randomUint picks a width first, so every msgpack int encoding appears.
func randomUint(rng *rand.Rand, bits int) uint64 {
	widths := []int{7, 8, 16, 32, 64}
	w := widths[rng.IntN(len(widths))]
	if w > bits {
		w = bits
	}
	if w == 64 {
		return rng.Uint64()
	}
	return rng.Uint64N(1 << w)
}

func randomInt(rng *rand.Rand, bits int) int64 {
	u := randomUint(rng, bits-1)
	if rng.IntN(3) == 0 {
		return -int64(u) - 1
	}
	return int64(u)
}

func randomText(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-. éλ"
	runes := []rune(alphabet)
	n := rng.IntN(12)
	out := make([]rune, n)
	for i := range out {
		out[i] = runes[rng.IntN(len(runes))]
	}
	return string(out)
}

// randomRaw encodes a random msgpack value the way msgpack-python would
// (ints in their smallest form, non-negative ones unsigned; bytes as bin), so
// that a peer decoding and re-encoding it reproduces the same bytes.
func randomRaw(rng *rand.Rand, depth int) proto.Raw {
	var b []byte
	switch k := rng.IntN(7); {
	case k == 0:
		b = msgp.AppendNil(b)
	case k == 1:
		b = msgp.AppendBool(b, rng.IntN(2) == 1)
	case k == 2:
		if i := randomInt(rng, 64); i < 0 {
			b = msgp.AppendInt64(b, i)
		} else {
			b = msgp.AppendUint64(b, uint64(i))
		}
	case k == 3:
		b = msgp.AppendBytes(b, []byte(randomText(rng)))
	case k == 4:
		b = msgp.AppendFloat64(b, float64(rng.IntN(1000))/8)
	default:
		if depth > 3 {
			return msgp.AppendNil(b)
		}
		n := rng.IntN(4)
		b = msgp.AppendArrayHeader(b, uint32(n))
		for range n {
			b = append(b, randomRaw(rng, depth+1)...)
		}
	}
	return b
}
