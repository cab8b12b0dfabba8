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
	"unicode"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// decodeCommand is "neolink decode": print the packets of a captured stream.
func decodeCommand() *command {
	return &command{
		name:    "decode",
		args:    "[FILE|-]",
		summary: "print the packets of a captured NEO byte stream",
		about: `Decode reads one direction of a NEO link, as captured (raw bytes, or hex
text with -hex), from FILE or stdin, and prints one line per packet:

    id=<id> code=<code, 4 hex digits> <Name> {Field:value ...}

The stream may start with its handshake, which tells its encoding; without
one, give -encoding N or M. On malformed input it prints the packets before
the fault, then "error at offset N: reason" (N counts bytes of the decoded
stream, handshake included) on stderr, and exits with status 1.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			o := new(decodeOpts)
			fs.StringVar(&o.encoding, "encoding", "auto", "wire `ENCODING` of the stream: auto (from its handshake), N or M")
			fs.BoolVar(&o.hex, "hex", false, "the input is hex text (whitespace ignored)")
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
	if o.hex {
		if data, err = decodeHexText(data); err != nil {
			return err
		}
	}
	out := bufio.NewWriter(os.Stdout)
	err = decodeStream(out, data, enc)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}

// decodeHexText decodes hex digits, ignoring whitespace.
func decodeHexText(text []byte) ([]byte, error) {
	digits := make([]byte, 0, len(text))
	for _, c := range text {
		if !unicode.IsSpace(rune(c)) {
			digits = append(digits, c)
		}
	}
	b := make([]byte, hex.DecodedLen(len(digits)))
	if _, err := hex.Decode(b, digits); err != nil {
		return nil, fmt.Errorf("bad hex input: %w", err)
	}
	return b, nil
}

// decodeStream prints the packets of data, in encoding enc or, if enc is 0,
// in the encoding its handshake announces.
func decodeStream(w io.Writer, data []byte, enc proto.Encoding) error {
	off := 0
	hsEnc, _, hsErr := handshake.Classify(data)
	if hsEnc != 0 {
		if enc != 0 && enc != hsEnc {
			return fmt.Errorf("the stream starts with the %v handshake but -encoding is %v", hsEnc, enc)
		}
		enc, off = hsEnc, handshake.Size
	} else if ve := (*handshake.VersionError)(nil); errors.As(hsErr, &ve) {
		return &offsetError{0, hsErr}
	} else if enc == 0 {
		why := "the input is empty"
		switch {
		case hsErr != nil:
			why = hsErr.Error()
		case len(data) > 0:
			why = fmt.Sprintf("its %d bytes are too short for one", len(data))
		}
		return fmt.Errorf("no handshake at the start of the stream (%s): give -encoding N or M", why)
	}
	for off < len(data) {
		p, ok, err := proto.ParsePacket(data[off:], enc, 0)
		if err != nil {
			var fe *proto.FrameError
			if errors.As(err, &fe) {
				err = fe.Err
			}
			return &offsetError{off, err}
		}
		if !ok {
			return &offsetError{off, fmt.Errorf("truncated packet: the stream ends %d bytes into it", len(data)-off)}
		}
		name := proto.NameOf(p.Code)
		msg, err := proto.Decode(p.Code, p.Args)
		if err != nil {
			if name == "" {
				name = "?"
			}
			fmt.Fprintf(w, "id=%d code=%#04x %s\n", p.ID, p.Code, name)
			return &offsetError{off, err}
		}
		fmt.Fprintf(w, "id=%d code=%#04x %s %s\n", p.ID, p.Code, name, formatMsg(msg))
		off += p.Size
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
