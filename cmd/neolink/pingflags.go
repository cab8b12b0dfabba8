package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/neolink/neolink/proto"
)

// The value types of ping's flags.

// defaultPort is the port serve listens on and ping dials when ADDR has none.
const defaultPort = "24680"

// withDefaultPort returns addr with defaultPort added if it has no port:
// "localhost", "::1" and "[::1]" become "localhost:24680", "[::1]:24680".
func withDefaultPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	return net.JoinHostPort(host, defaultPort)
}

// durationFlag is a flag.Value holding a duration that may be unset; a bare
// number is refused with a hint, since "5" is ambiguous.
type durationFlag struct {
	d   time.Duration
	set bool
}

// String returns the duration, or "" if unset.
func (f *durationFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.d.String()
}

// Set parses a Go duration such as 5s, 1m30s or 250ms.
func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return fmt.Errorf("want a duration with a unit, like %ss or %sms", s, s)
		}
		return errors.New("want a duration like 5s, 1m30s or 250ms")
	}
	if d < 0 {
		return errors.New("want a positive duration")
	}
	f.d, f.set = d, true
	return nil
}

// durationValue is a flag.Value for a *time.Duration with a default, whose
// errors say what a duration looks like (flag's own says "parse error").
type durationValue struct{ p *time.Duration }

// durationVar defines a duration flag with value *p, initially def.
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(durationValue{p}, name, usage)
}

// String returns the duration.
func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

// Set parses a Go duration such as 5s.
func (v durationValue) Set(s string) error {
	var f durationFlag
	if err := f.Set(s); err != nil {
		return err
	}
	*v.p = f.d
	return nil
}

// sizeFlag is a flag.Value holding a byte count that may be unset. It takes
// the suffixes of dd(1): k, K or KiB = 1024, KB = 1000, and so on for M, G.
type sizeFlag struct {
	v   uint64
	set bool
}

// String returns the size in bytes, or "" if unset.
func (f *sizeFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatUint(f.v, 10)
}

// Set parses a size such as 4096, 4k, 1MiB or 2MB.
func (f *sizeFlag) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	f.v, f.set = v, true
	return nil
}

// sizeUnits are the suffixes parseSize accepts, by multiplier.
var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
}

// parseSize parses a byte count with an optional unit suffix.
func parseSize(s string) (uint64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, errors.New("want a size in bytes such as 4096, 4k, 1MiB or 2MB")
	}
	x, err := strconv.ParseFloat(num, 64)
	if err != nil || x*float64(mult) > 1<<53 || x*float64(mult) != math.Trunc(x*float64(mult)) {
		return 0, fmt.Errorf("want a whole number of bytes")
	}
	return uint64(x * float64(mult)), nil
}

// maxAnswerData returns the largest object data an AnswerObject for oid
// can carry in one packet of encoding enc: MaxPacketSize less the header
// and the other fields.
func maxAnswerData(enc proto.Encoding, oid uint64) uint64 {
	msg := &proto.AnswerObject{OID: proto.Oid(oid), Serial: 1, Compression: proto.Some(int64(0)),
		Checksum: make([]byte, 20), Data: []byte{}}
	b, err := proto.AppendPacket(nil, enc, math.MaxUint32, msg, proto.MaxPacketSize)
	if err != nil {
		return 0
	}
	const binHeaderGrowth = 3 // an empty bin has a 2-byte header, a large one 5 (bin32)
	return uint64(proto.MaxPacketSize - len(b) - binHeaderGrowth)
}

// rateFlag is a flag.Value holding a rate limit: "1000" or "1000/s" is a
// thousand per second, "50/ms" fifty per millisecond, "30/m" thirty a minute.
type rateFlag struct {
	period time.Duration // between two starts; 0: unlimited
	perSec float64
}

// String returns the rate per second, or "" if unlimited.
func (f *rateFlag) String() string {
	if f == nil || f.period == 0 {
		return ""
	}
	return strconv.FormatFloat(f.perSec, 'g', -1, 64) + "/s"
}

// Set parses N or N/UNIT, UNIT a duration (1s, 100ms) or a unit of one (s, ms, m, h).
func (f *rateFlag) Set(s string) error {
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) {
		return errors.New("want a positive rate such as 1000, 1000/s or 50/ms")
	}
	per := time.Second
	if unit != "" {
		if per, err = time.ParseDuration(unit); err != nil {
			if per, err = time.ParseDuration("1" + unit); err != nil || per <= 0 {
				return fmt.Errorf("unknown rate unit %q: want s, ms, m or a duration such as 10s", unit)
			}
		}
	}
	if per <= 0 {
		return errors.New("want a positive rate period")
	}
	f.period = time.Duration(float64(per) / n)
	if f.period <= 0 {
		return errors.New("rate too high: at most one round trip per nanosecond")
	}
	f.perSec = n * float64(time.Second) / float64(per)
	return nil
}
