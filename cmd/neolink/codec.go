package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/neolink/neolink/proto"
	"github.com/neolink/neolink/proto/prototest"
)

// The codec cross-check: lines "CODE HEXARGS", the decimal packet code and
// the lowercase hex of the msgpack args array. codec-random writes random
// messages of every type; codec-echo decodes and re-encodes them. Piping
// one implementation's codec-random into the other's codec-echo must give
// the same lines back.

// codecRandomCommand is "neolink codec-random".
func codecRandomCommand() *command {
	return &command{
		name:    "codec-random",
		summary: "print random CODE HEXARGS lines of every message type (codec cross-check)",
		about: `Codec-random prints -per-type lines "CODE HEXARGS" for every message type of
the catalog, in catalog order: random schema-valid messages, the same for
the same -seed.`,
		hidden: true,
		setup: func(fs *flag.FlagSet) func([]string) error {
			seed := fs.Uint64("seed", 1, "random `SEED`")
			perType := fs.Int("per-type", 1, "lines per message type (`K`)")
			return func(args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if *perType < 0 {
					return usagef("-per-type must not be negative")
				}
				return codecRandom(*seed, *perType)
			}
		},
	}
}

// codecRandom writes perType random lines per catalog type.
func codecRandom(seed uint64, perType int) error {
	rng := rand.New(rand.NewPCG(seed, 0))
	out := bufio.NewWriter(os.Stdout)
	var buf []byte
	for _, code := range proto.Codes() {
		for range perType {
			buf = prototest.New(rng, code).AppendArgs(buf[:0])
			fmt.Fprintf(out, "%d %x\n", code, buf)
		}
	}
	return out.Flush()
}

// codecEchoCommand is "neolink codec-echo".
func codecEchoCommand() *command {
	return &command{
		name:    "codec-echo",
		summary: "decode and re-encode CODE HEXARGS lines from stdin (codec cross-check)",
		about: `Codec-echo reads lines "CODE HEXARGS" from stdin, decodes each message and
encodes it again, and prints "CODE HEX", or "CODE ERROR <message>" if it
does not decode. Blank lines are skipped. Output is flushed whenever the
input has no more lines ready, so it can be driven line by line.`,
		hidden: true,
		setup: func(fs *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				return codecEcho()
			}
		},
	}
}

// codecEcho echoes stdin's lines to stdout through the codec.
func codecEcho() error {
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	var buf []byte
	for {
		line, err := in.ReadString('\n')
		if s := strings.TrimSpace(line); s != "" {
			var reply string
			reply, buf = echoLine(s, buf[:0])
			out.WriteString(reply)
			out.WriteByte('\n')
		}
		if in.Buffered() == 0 || err != nil {
			if ferr := out.Flush(); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return nil // end of input
		}
	}
}

// echoLine decodes and re-encodes one non-blank line, using buf.
func echoLine(line string, buf []byte) (string, []byte) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return f[0] + " ERROR bad line: want 'CODE HEXARGS'", buf
	}
	code, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return f[0] + " ERROR bad line: bad code", buf
	}
	args, err := hex.DecodeString(f[1])
	if err != nil {
		return f[0] + " ERROR bad line: bad hex", buf
	}
	msg, err := proto.Decode(uint16(code), args)
	if err != nil {
		return fmt.Sprintf("%d ERROR %s", code, oneLine(err.Error())), buf
	}
	buf = msg.AppendArgs(buf)
	return fmt.Sprintf("%d %x", code, buf), buf
}
