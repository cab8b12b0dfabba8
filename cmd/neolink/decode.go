package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// decodeCommand is "neolink decode": print the packets of a captured stream.
func decodeCommand() *command {
	return &command{
		name:    "decode",
		args:    "[FILE|-]",
		summary: "print the packets of a captured NEO byte stream or tcpdump session",
		about: `Decode reads a captured NEO link from FILE or stdin and prints one line per
packet:

    id=<id> code=<code, 4 hex digits> <Name> {Field:value ...}

The input is one direction of a link as raw bytes, or with -hex, hex text:
bare hex digits (whitespace ignored), an xxd or hexdump -C dump of such a
stream, or the output of "tcpdump -X" for a whole TCP session, e.g.

    tcpdump -i lo -w s.pcap 'tcp port 24680'   # while the session runs
    tcpdump -r s.pcap -nn -X | neolink decode -hex

A tcpdump session is decoded in both directions, in capture order: each
line starts with "->" (from the side that sent the first SYN) or "<-", and
a first line says which side is which.

A stream may start with its handshake, which tells its encoding; without
one, give -encoding N or M. On malformed input decode prints the packets
before the fault, then "error at offset N: reason" (N counts bytes of the
decoded stream, handshake included) on stderr, and exits with status 1.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			o := new(decodeOpts)
			fs.StringVar(&o.encoding, "encoding", "auto", "wire `ENCODING` of the stream: auto (from its handshake), N or M")
			fs.BoolVar(&o.hex, "hex", false, "the input is hex text: bare, xxd, hexdump -C or tcpdump -X")
			return func(args []string) error {
				switch len(args) {
				case 0:
					return o.run("-")
				case 1:
					return o.run(args[0])
				}
				return usagef("want at most one FILE")
			}
		},
	}
}

// decodeOpts are the flags of decode.
type decodeOpts struct {
	encoding string
	hex      bool
}

// offsetError is a fault in the decoded stream.
type offsetError struct {
	offset int
	err    error
}

// Error formats as "error at offset N: reason".
func (e *offsetError) Error() string { return fmt.Sprintf("error at offset %d: %v", e.offset, e.err) }

// run decodes the stream in file ("-" for stdin).
func (o *decodeOpts) run(file string) error {
	enc, err := parseEncoding(o.encoding, true)
	if err != nil {
		return err
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	segs := []segment{{data: data}}
	if o.hex {
		if segs, err = parseHexInput(data); err != nil {
			return err
		}
	} else if looksLikeHexText(data) {
		return usagef("the input looks like hex text: add -hex")
	}
	out := bufio.NewWriter(os.Stdout)
	err = decodeSegments(out, segs, enc)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}

// decodeSegments decodes captured segments: one stream if their dir is
// "", else one stream per direction, printed in capture order.
func decodeSegments(w io.Writer, segs []segment, enc proto.Encoding) error {
	if len(segs) == 1 && segs[0].dir == "" {
		d := &streamDecoder{w: w, enc: enc}
		return d.feed(segs[0].data, true)
	}
	decs := make(map[string]*streamDecoder)
	var order []string
	for _, sg := range segs {
		d := decs[sg.dir]
		if d == nil {
			if len(order) == 2 {
				return fmt.Errorf("the capture holds more than one TCP connection (%s, %s and %s): filter it on one, e.g. 'tcp port N'", order[0], order[1], sg.dir)
			}
			d = &streamDecoder{w: w, enc: enc, prefix: "-> "}
			if len(order) == 1 {
				d.prefix = "<- "
			} else {
				src, dst, _ := strings.Cut(sg.dir, " > ")
				fmt.Fprintf(w, "# -> is %s to %s, <- the other way\n", src, dst)
			}
			decs[sg.dir] = d
			order = append(order, sg.dir)
		}
		if err := d.feed(sg.data, false); err != nil {
			return fmt.Errorf("%s: %w", sg.dir, err)
		}
	}
	for _, dir := range order {
		if err := decs[dir].feed(nil, true); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	return nil
}

// streamDecoder prints the packets of one stream as its bytes arrive.
type streamDecoder struct {
	w      io.Writer
	enc    proto.Encoding // 0 until known
	prefix string         // of each output line
	buf    []byte         // bytes not decoded yet
	off    int            // stream offset of buf[0]
	hsDone bool           // the handshake, if any, is behind
}

// feed adds data to the stream and prints the packets it completes. With
// final, the stream ends: leftover bytes are an error.
func (d *streamDecoder) feed(data []byte, final bool) error {
	d.buf = append(d.buf, data...)
	if !d.hsDone {
		if len(d.buf) < handshake.Size && !final {
			return nil
		}
		if err := d.handshake(); err != nil {
			return err
		}
	}
	for len(d.buf) > 0 {
		p, ok, err := proto.ParsePacket(d.buf, d.enc, 0)
		if err != nil {
			var fe *proto.FrameError
			if errors.As(err, &fe) {
				err = fe.Err
			}
			return &offsetError{d.off, err}
		}
		if !ok {
			if final {
				return &offsetError{d.off, fmt.Errorf("truncated packet: the stream ends %d bytes into it", len(d.buf))}
			}
			return nil
		}
		name := proto.NameOf(p.Code)
		msg, err := proto.Decode(p.Code, p.Args)
		if err != nil {
			if name == "" {
				name = "?"
			}
			fmt.Fprintf(d.w, "%sid=%d code=%#04x %s\n", d.prefix, p.ID, p.Code, name)
			return &offsetError{d.off, err}
		}
		fmt.Fprintf(d.w, "%sid=%d code=%#04x %s %s\n", d.prefix, p.ID, p.Code, name, formatMsg(msg))
		d.buf = d.buf[p.Size:]
		d.off += p.Size
	}
	return nil
}

// handshake consumes the stream's handshake, if it starts with one, and
// settles the encoding.
func (d *streamDecoder) handshake() error {
	d.hsDone = true
	hsEnc, _, hsErr := handshake.Classify(d.buf)
	if hsEnc != 0 {
		if d.enc != 0 && d.enc != hsEnc {
			return fmt.Errorf("the stream starts with the %v handshake but -encoding is %v", hsEnc, d.enc)
		}
		d.enc = hsEnc
		d.buf, d.off = d.buf[handshake.Size:], handshake.Size
		return nil
	}
	if ve := (*handshake.VersionError)(nil); errors.As(hsErr, &ve) {
		return &offsetError{0, hsErr}
	}
	if d.enc == 0 {
		why := "the input is empty"
		switch {
		case hsErr != nil:
			why = hsErr.Error()
		case len(d.buf) > 0:
			why = fmt.Sprintf("its %d bytes are too short for one", len(d.buf))
		}
		return fmt.Errorf("no handshake at the start of the stream (%s): give -encoding N or M", why)
	}
	return nil
}

// maxShownBytes is how many bytes of a byte string formatMsg shows.
const maxShownBytes = 32

var (
	stringerType = reflect.TypeFor[fmt.Stringer]()
	rawType      = reflect.TypeFor[proto.Raw]()
)

// formatMsg formats a message's fields as {Name:value ...}: byte strings in
// hex (the first 32 bytes and the length when longer), optional values as
// their value or None, ids and enums by their String method.
func formatMsg(msg proto.Msg) string {
	var b strings.Builder
	formatValue(&b, reflect.ValueOf(msg).Elem())
	return b.String()
}

// formatValue appends the formatted v to b.
func formatValue(b *strings.Builder, v reflect.Value) {
	t := v.Type()
	switch {
	case t == rawType || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8):
		formatBytes(b, v.Bytes(), t == rawType)
		return
	case t.Kind() == reflect.Struct && t.NumField() == 2 && t.Field(0).Name == "V" && t.Field(1).Name == "Valid":
		if !v.Field(1).Bool() {
			b.WriteString("None")
		} else {
			formatValue(b, v.Field(0))
		}
		return
	case t.Kind() == reflect.Struct && t.NumField() == 2 && t.Field(0).Name == "Key" && t.Field(1).Name == "Value":
		formatValue(b, v.Field(0))
		b.WriteByte(':')
		formatValue(b, v.Field(1))
		return
	case t.Implements(stringerType):
		b.WriteString(v.Interface().(fmt.Stringer).String())
		return
	}
	switch t.Kind() {
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case reflect.Float32, reflect.Float64:
		b.WriteString(strconv.FormatFloat(v.Float(), 'f', -1, 64)) // timestamps: no exponent
	case reflect.Slice:
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(' ')
			}
			formatValue(b, v.Index(i))
		}
		b.WriteByte(']')
	case reflect.Struct:
		b.WriteByte('{')
		for i := range t.NumField() {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(t.Field(i).Name)
			b.WriteByte(':')
			formatValue(b, v.Field(i))
		}
		b.WriteByte('}')
	default:
		fmt.Fprint(b, v.Interface())
	}
}

// formatBytes appends p in hex, truncated to maxShownBytes with its length.
// A raw msgpack object is marked with "raw:".
func formatBytes(b *strings.Builder, p []byte, raw bool) {
	if raw {
		b.WriteString("raw:")
	}
	if len(p) == 0 {
		b.WriteString(`""`)
		return
	}
	if len(p) <= maxShownBytes {
		b.WriteString(hex.EncodeToString(p))
		return
	}
	fmt.Fprintf(b, "%s...(%d bytes)", hex.EncodeToString(p[:maxShownBytes]), len(p))
}
