package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/tinylib/msgp/msgp"
)

// MaxPacketSize is the default and largest packet size: the whole framed
// packet, header included. It is NEO/py's msgpack Unpacker max_buffer_size
// (0x4000000, 64 MiB) and NEO/go's PktMaxSize.
const MaxPacketSize = 0x4000000

// HeaderSizeN is the size of the N framing header.
const HeaderSizeN = 10

// maxHeaderSizeM bounds the M prefix before args: msgpack lets the array
// header take 5 bytes and the id and code any int form of up to 9 bytes
// (NEO/py sends 1 + 5 + 3 at most, but a reader must not call a valid
// header malformed just because it has not all arrived yet).
const maxHeaderSizeM = 5 + 9 + 9

// Packet is one framed packet: the routing fields and the undecoded args.
type Packet struct {
	ID   uint32
	Code uint16
	// Args is the msgpack args array. From PacketReader.Next it aliases the
	// reader's buffer and is valid only until the next call on that reader.
	Args []byte
	// Size is the length of the whole framed packet on the wire.
	Size int
	// Lent is, for a packet the reader lent (see
	// PacketReader.SetLendThreshold), the whole buffer that holds it, Args
	// included; nil otherwise. The caller owns it: Args stays valid after
	// the next call on the reader, for as long as the caller likes. Passing
	// it to Recycle once done lets a later large packet reuse it.
	Lent []byte
}

// Framing errors. A reader that returns one of them has lost the stream's
// packet boundaries: the connection cannot be used further.
var (
	// ErrPacketTooBig means a packet exceeds the size limit. The reader
	// reports it from the header or from the msgpack structure, before
	// buffering the packet.
	ErrPacketTooBig = errors.New("proto: packet too big")
	// ErrBadFrame means the bytes are not a packet of the framing.
	ErrBadFrame = errors.New("proto: malformed packet framing")
)

// FrameError describes a framing failure at a stream offset.
type FrameError struct {
	Offset int64 // stream offset of the packet that failed
	Err    error // ErrPacketTooBig or ErrBadFrame, wrapped with details
}

// Error formats the failure as "proto: packet at stream offset N: reason".
func (e *FrameError) Error() string {
	return fmt.Sprintf("proto: packet at stream offset %d: %s", e.Offset, reason(e.Err))
}

// Unwrap returns the underlying error.
func (e *FrameError) Unwrap() error { return e.Err }

// Cause returns the underlying error (github.com/pkg/errors convention).
func (e *FrameError) Cause() error { return e.Err }

// AppendPacket appends msg framed as packet id in encoding enc. A packet
// larger than limit bytes (MaxPacketSize when limit <= 0) is not kept: b is
// returned with its original length and an error wrapping ErrPacketTooBig.
// Callers that must not even encode an oversized message can check
// msg.ArgsSize() against the limit first.
func AppendPacket(b []byte, enc Encoding, id uint32, msg Msg, limit int) ([]byte, error) {
	limit = clampLimit(limit)
	start := len(b)
	if enc == EncodingN {
		b = binary.BigEndian.AppendUint32(b, id)
		b = binary.BigEndian.AppendUint16(b, msg.MsgCode())
		b = append(b, 0, 0, 0, 0)
		b = msg.AppendArgs(b)
		binary.BigEndian.PutUint32(b[start+6:], uint32(len(b)-start-HeaderSizeN))
	} else {
		b = msg.AppendArgs(appendHeaderM(b, id, msg.MsgCode()))
	}
	if n := len(b) - start; n > limit {
		return b[:start], fmt.Errorf("%w: %s is %d bytes, limit %d", ErrPacketTooBig, Name(msg), n, limit)
	}
	return b, nil
}

func appendHeaderM(b []byte, id uint32, code uint16) []byte {
	b = append(b, 0x93)
	b = msgp.AppendUint32(b, id)
	return msgp.AppendUint16(b, code)
}

// AppendPacketArgs appends a packet whose args are already encoded (a msgpack
// array). It does not check the size.
func AppendPacketArgs(b []byte, enc Encoding, id uint32, code uint16, args []byte) []byte {
	if enc == EncodingN {
		b = binary.BigEndian.AppendUint32(b, id)
		b = binary.BigEndian.AppendUint16(b, code)
		b = binary.BigEndian.AppendUint32(b, uint32(len(args)))
		return append(b, args...)
	}
	return append(appendHeaderM(b, id, code), args...)
}

// ParsePacket parses one complete packet at the start of b. It returns the
// packet (aliasing b) and ok=false if b holds only a prefix of a packet.
// limit <= 0 means MaxPacketSize.
func ParsePacket(b []byte, enc Encoding, limit int) (p Packet, ok bool, err error) {
	r := PacketReader{enc: enc, limit: clampLimit(limit), buf: b, end: len(b)}
	p, ok, err = r.parse()
	if err != nil {
		err = &FrameError{Offset: 0, Err: err}
	}
	return p, ok, err
}

func clampLimit(limit int) int {
	if limit <= 0 || limit > MaxPacketSize {
		return MaxPacketSize
	}
	return limit
}

// PacketReader reads framed packets from an io.Reader. It reads ahead into
// one reusable buffer, so a burst of small packets costs one read call, and
// it parses headers in place. It is not safe for concurrent use.
type PacketReader struct {
	r     io.Reader
	enc   Encoding
	limit int

	buf        []byte // buf[start:end] is unparsed input
	start, end int
	offset     int64 // stream offset of buf[start]
	need       int   // bytes of the current packet known to be needed, 0 if unknown
	walk       walker
	small      int // packets in a row that fit the default buffer size
	err        error

	lendAt int    // packets of at least lendAt bytes are lent; 0: none
	home   []byte // the reader's own buffer while buf holds a packet to lend
	box    *readBuf
}

// readBuf carries a released read-ahead buffer in readBufs; readers keep
// the box they took, so that releasing does not allocate.
type readBuf struct{ b []byte }

// readBufs holds read-ahead buffers of idle readers (see Release).
var readBufs sync.Pool

// Release gives the read-ahead buffer back to a pool shared by all readers
// when nothing is buffered, so that an idle reader holds no buffer; its
// next read takes one again. It reports whether the buffer was released.
// It is for a caller about to wait a long time for input (a connection
// that may stay idle), not for every read.
func (r *PacketReader) Release() bool {
	if r.start != r.end || r.home != nil || len(r.buf) != readBufSize {
		return false
	}
	bx := r.box
	if bx == nil {
		bx = new(readBuf)
	}
	bx.b, r.buf, r.box = r.buf, nil, nil
	r.start, r.end = 0, 0
	readBufs.Put(bx)
	return true
}

// reacquire takes a read-ahead buffer after Release.
func (r *PacketReader) reacquire() {
	if bx, _ := readBufs.Get().(*readBuf); bx != nil {
		r.buf, bx.b, r.box = bx.b, nil, bx
		return
	}
	r.buf = make([]byte, readBufSize)
}

// Default read-ahead buffer size. A larger packet grows the buffer; it
// shrinks back after shrinkAfterN packets in a row that fit the default, so
// a stream of large packets keeps its buffer and a burst does not pin memory.
const (
	readBufSize  = 16 << 10
	shrinkAfterN = 64
	readMinSpace = 4 << 10
)

// NewPacketReader returns a reader of enc-framed packets of at most limit bytes
// (MaxPacketSize when limit <= 0). initial holds bytes already read from r
// (e.g. read past a handshake); they are parsed first.
func NewPacketReader(r io.Reader, enc Encoding, limit int, initial []byte) *PacketReader {
	pr := &PacketReader{r: r, enc: enc, limit: clampLimit(limit)}
	pr.buf = make([]byte, max(readBufSize, len(initial)))
	pr.end = copy(pr.buf, initial)
	return pr
}

// Next returns the next packet, reading from the underlying reader as needed.
// The returned Args alias the reader's buffer until the next call, unless
// the packet is Lent.
//
// A framing error (*FrameError) or read error is sticky: every later call
// returns it again. A read error that is a timeout (net.Error with Timeout())
// is not sticky and leaves the reader's state intact, so a reader interrupted
// with a deadline can resume where it stopped. io.EOF is returned only at a
// packet boundary; EOF inside a packet is io.ErrUnexpectedEOF.
func (r *PacketReader) Next() (Packet, error) {
	for {
		p, ok, err := r.NextBuffered()
		if err != nil || ok {
			return p, err
		}
		if err := r.fill(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return Packet{}, err
			}
			if err == io.EOF && r.end > r.start {
				err = io.ErrUnexpectedEOF
			}
			r.err = err
			return Packet{}, err
		}
	}
}

// NextBuffered returns the next packet if it is already complete in the
// buffer, without reading; ok is false if more input is needed. A framing
// error is sticky, as for Next. The packet's Args are valid until the next
// call on the reader, unless the packet is Lent.
func (r *PacketReader) NextBuffered() (p Packet, ok bool, err error) {
	if r.err != nil {
		return Packet{}, false, r.err
	}
	p, ok, err = r.parse()
	if err != nil {
		r.err = &FrameError{Offset: r.offset, Err: err}
		return Packet{}, false, r.err
	}
	return p, ok, nil
}

// parse returns the packet at buf[start:end] if it is complete and consumes it.
func (r *PacketReader) parse() (Packet, bool, error) {
	var p Packet
	var n int
	var err error
	b := r.buf[r.start:r.end]
	if r.enc == EncodingN {
		p, n, err = r.parseN(b)
	} else {
		p, n, err = r.parseM(b)
	}
	if err != nil || n == 0 {
		return Packet{}, false, err
	}
	r.start += n
	r.offset += int64(n)
	r.need = 0
	if n > readBufSize {
		r.small = 0
	} else {
		r.small++
	}
	r.walk = walker{stack: r.walk.stack[:0]}
	if r.home != nil {
		p.Lent = r.buf
		r.endLend()
	}
	return p, true, nil
}

func (r *PacketReader) parseN(b []byte) (Packet, int, error) {
	if len(b) < HeaderSizeN {
		return Packet{}, 0, nil
	}
	size := uint64(binary.BigEndian.Uint32(b[6:])) + HeaderSizeN
	if size > uint64(r.limit) {
		return Packet{}, 0, fmt.Errorf("%w: header announces %d bytes, limit %d", ErrPacketTooBig, size, r.limit)
	}
	if uint64(len(b)) < size {
		r.need = int(size)
		return Packet{}, 0, nil
	}
	return Packet{
		ID:   binary.BigEndian.Uint32(b),
		Code: binary.BigEndian.Uint16(b[4:]),
		Args: b[HeaderSizeN:size:size],
		Size: int(size),
	}, int(size), nil
}

func (r *PacketReader) parseM(b []byte) (Packet, int, error) {
	w := &r.walk
	if !w.started {
		if len(b) == 0 {
			return Packet{}, 0, nil
		}
		n, o, err := msgp.ReadArrayHeaderBytes(b)
		if err == nil && n != 3 {
			return Packet{}, 0, fmt.Errorf("%w: packet is an array of %d elements, want 3", ErrBadFrame, n)
		}
		var id uint32
		var code uint16
		if err == nil {
			id, o, err = msgp.ReadUint32Bytes(o)
		}
		if err == nil {
			code, o, err = msgp.ReadUint16Bytes(o)
		}
		if err == nil && len(o) > 0 && msgp.NextType(o) != msgp.ArrayType {
			err = fmt.Errorf("%w: args are msgpack %s, want array", ErrBadFrame, msgp.NextType(o))
		}
		if err == nil && len(o) == 0 {
			err = msgp.ErrShortBytes
		}
		if err != nil {
			if errors.Is(err, msgp.ErrShortBytes) {
				if len(b) > maxHeaderSizeM {
					return Packet{}, 0, fmt.Errorf("%w: header: %v", ErrBadFrame, err)
				}
				return Packet{}, 0, nil
			}
			if !errors.Is(err, ErrBadFrame) {
				err = fmt.Errorf("%w: header: %v", ErrBadFrame, err)
			}
			return Packet{}, 0, err
		}
		*w = walker{started: true, id: id, code: code, argsAt: len(b) - len(o), off: len(b) - len(o), stack: w.stack[:0]}
		w.stack = append(w.stack, 1)
	}
	done, err := w.advance(b, r.limit)
	if err != nil {
		return Packet{}, 0, err
	}
	if !done {
		r.need = w.need
		return Packet{}, 0, nil
	}
	return Packet{ID: w.id, Code: w.code, Args: b[w.argsAt:w.off:w.off], Size: w.off}, w.off, nil
}

// walker finds the end of an M packet by walking its msgpack structure
// without decoding it. It is resumable: when the buffered bytes end inside the
// packet it keeps its position, so a large packet arriving in many reads is
// walked once in total, not once per read.
type walker struct {
	started bool
	id      uint32
	code    uint16
	argsAt  int      // offset of args within the packet
	off     int      // offset of the next unwalked object within the packet
	need    int      // packet bytes needed to finish the current object, 0 if unknown
	stack   []uint32 // objects still to walk in each open container
}

// maxDepth bounds msgpack nesting; NEO packets nest at most 5 deep.
const maxDepth = 32

func (w *walker) advance(b []byte, limit int) (done bool, err error) {
	w.need = 0
	for len(w.stack) > 0 {
		top := len(w.stack) - 1
		if w.stack[top] == 0 {
			w.stack = w.stack[:top]
			continue
		}
		o := b[w.off:]
		if len(o) == 0 {
			return false, nil
		}
		var hdr, size int // header bytes, and payload bytes after it
		var children uint32
		switch msgp.NextType(o) {
		case msgp.ArrayType, msgp.MapType:
			var n uint32
			var rest []byte
			if msgp.NextType(o) == msgp.ArrayType {
				n, rest, err = msgp.ReadArrayHeaderBytes(o)
			} else {
				n, rest, err = msgp.ReadMapHeaderBytes(o)
				n2 := uint64(n) * 2
				if n2 > uint64(limit) {
					return false, fmt.Errorf("%w: map of %d entries", ErrPacketTooBig, n)
				}
				n = uint32(n2)
			}
			if errors.Is(err, msgp.ErrShortBytes) {
				return false, nil
			}
			hdr, children = len(o)-len(rest), n
		case msgp.BinType:
			var n uint32
			var rest []byte
			n, rest, err = msgp.ReadBytesHeader(o)
			if errors.Is(err, msgp.ErrShortBytes) {
				return false, nil
			}
			hdr, size = len(o)-len(rest), int(n)
		case msgp.InvalidType:
			return false, fmt.Errorf("%w: invalid msgpack byte %#02x at packet offset %d", ErrBadFrame, o[0], w.off)
		default:
			var rest []byte
			rest, err = msgp.Skip(o)
			if errors.Is(err, msgp.ErrShortBytes) {
				if len(o) > limit {
					return false, fmt.Errorf("%w: object larger than %d bytes", ErrPacketTooBig, limit)
				}
				return false, nil
			}
			hdr = len(o) - len(rest)
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrBadFrame, err)
		}
		end := uint64(w.off) + uint64(hdr) + uint64(size)
		if end > uint64(limit) {
			return false, fmt.Errorf("%w: packet exceeds %d bytes", ErrPacketTooBig, limit)
		}
		if end > uint64(len(b)) {
			w.need = int(end)
			return false, nil
		}
		w.stack[top]--
		w.off = int(end)
		if children > 0 {
			if len(w.stack) >= maxDepth {
				return false, fmt.Errorf("%w: msgpack nesting deeper than %d", ErrBadFrame, maxDepth)
			}
			w.stack = append(w.stack, children)
		}
	}
	return true, nil
}

// fill reads more input, first making room for the packet being parsed.
func (r *PacketReader) fill() error {
	if r.buf == nil {
		r.reacquire()
	}
	if r.start == r.end {
		r.start, r.end = 0, 0 // nothing pending: rewinding costs no copy
	}
	// Grow towards a large packet at most by doubling what has arrived, so
	// that a header announcing 64 MiB costs memory only as the bytes come.
	pending := r.end - r.start
	want := readMinSpace
	if r.need > 0 {
		want = min(r.need-pending, max(pending, readBufSize))
	} else if pending >= r.limit {
		return &FrameError{Offset: r.offset, Err: fmt.Errorf("%w: limit %d", ErrPacketTooBig, r.limit)}
	}
	if r.lendAt > 0 && r.home == nil && (r.need >= r.lendAt || pending >= r.lendAt) {
		r.startLend()
	}
	r.makeRoom(want)
	space := r.buf[r.end:]
	switch {
	case r.need > pending && (r.need > readBufSize || r.home != nil):
		// Inside a large packet, read only up to its end: reading ahead
		// would leave the next packet's start at the buffer's tail, to be
		// moved to the front before the next large packet fits (or, for
		// a lent packet, to be moved back home).
		space = r.buf[r.end:min(len(r.buf), r.start+r.need)]
	case r.home != nil:
		space = r.buf[r.end:min(len(r.buf), r.end+readMinSpace)]
	}
	n, err := r.r.Read(space)
	r.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// makeRoom ensures at least want free bytes after r.end, compacting or
// growing the buffer. Packet state (walker offsets) is relative to r.start,
// so moving the unparsed bytes does not disturb it.
func (r *PacketReader) makeRoom(want int) {
	if len(r.buf)-r.end >= want {
		return
	}
	pending := r.end - r.start
	size := len(r.buf)
	if pending+want > size {
		size = max(pending+want, 2*size)
		if ceiling := r.limit + maxHeaderSizeM; size > ceiling {
			size = max(ceiling, pending+want)
		}
	} else if r.home == nil && size > readBufSize && r.small >= shrinkAfterN && pending+want <= readBufSize {
		size = readBufSize
	}
	if size != len(r.buf) && r.home != nil {
		nb := getLendBuf(size)
		copy(nb, r.buf[r.start:r.end])
		Recycle(r.buf)
		r.buf = nb
	} else if size != len(r.buf) {
		nb := make([]byte, size)
		copy(nb, r.buf[r.start:r.end])
		r.buf = nb
	} else {
		copy(r.buf, r.buf[r.start:r.end])
	}
	r.start, r.end = 0, pending
}
