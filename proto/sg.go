package proto

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"

	"github.com/tinylib/msgp/msgp"
)

// DefaultSGThreshold is the bin size from which scatter-gather encoding
// leaves a field out of the buffer when Segments.Threshold is not set. Below
// it, copying the bytes costs less than one more entry in a writev.
const DefaultSGThreshold = 16 << 10

// Segments records the large []byte fields that a scatter-gather encoding
// (AppendPacketSG, a message's AppendArgsSG) left out of the caller's buffer
// b: for each, the offset in b where its bytes belong, and the field's own
// slice. Buffers then interleaves them into a net.Buffers for one writev, so
// a large payload goes from the message to the socket without being copied.
//
// One Segments describes one buffer: every packet appended to b since the
// last Reset. Reuse both together (b = b[:0] with seg.Reset()); in that
// steady state encoding allocates nothing. The recorded slices are the
// messages' own memory: they must not change until the bytes are written.
// The zero value is ready to use. A Segments is not safe for concurrent use.
type Segments struct {
	// Threshold is the size from which a bin is left out of the buffer;
	// <= 0 means DefaultSGThreshold. Set it before encoding.
	Threshold int

	ext   []extSeg
	bytes int // sum of len(ext[i].data)
	bufs  net.Buffers
	out   net.Buffers // what WriteBuffers consumes, so bufs keeps its storage
}

type extSeg struct {
	at   int // offset in the buffer where data belongs
	data []byte
}

// Reset forgets every recorded segment and the references to their memory.
func (s *Segments) Reset() {
	clear(s.ext)
	s.ext = s.ext[:0]
	clear(s.bufs)
	s.bufs = s.bufs[:0]
	s.out = nil
	s.bytes = 0
}

// Len returns the number of bytes recorded outside the buffer: the wire size
// of what was encoded is len(b) + s.Len().
func (s *Segments) Len() int { return s.bytes }

// Count returns the number of segments recorded.
func (s *Segments) Count() int { return len(s.ext) }

// Buffers returns the wire bytes of b, the buffer the segments were recorded
// against (it may have been grown by append since), as b's parts with the
// recorded slices in between, skipping empty parts. Writing them in order
// (net.Buffers.WriteTo uses writev on a *net.TCPConn) writes exactly the
// bytes that AppendPacket would have put in one buffer.
//
// The result reuses storage owned by s and is valid until the next call on
// s; WriteTo consumes it.
func (s *Segments) Buffers(b []byte) net.Buffers {
	clear(s.bufs)
	s.bufs = s.bufs[:0]
	prev := 0
	for _, e := range s.ext {
		if e.at > prev {
			s.bufs = append(s.bufs, b[prev:e.at])
		}
		s.bufs = append(s.bufs, e.data)
		prev = e.at
	}
	if len(b) > prev {
		s.bufs = append(s.bufs, b[prev:])
	}
	return s.bufs
}

// WriteBuffers writes Buffers(b) to w: with one writev where w supports it
// (*net.TCPConn, *net.UnixConn), else with one Write per part, which for a
// *tls.Conn means at least one TLS record per part. Unlike calling WriteTo
// on the result of Buffers, it allocates nothing. The result is that of
// net.Buffers.WriteTo.
func (s *Segments) WriteBuffers(w io.Writer, b []byte) (int64, error) {
	s.out = s.Buffers(b)
	n, err := s.out.WriteTo(w)
	s.out = nil
	return n, err
}

// AppendTo appends the wire bytes of b with the segments in place to dst: the
// copying fallback for a writer that cannot use net.Buffers.
func (s *Segments) AppendTo(dst, b []byte) []byte {
	prev := 0
	for _, e := range s.ext {
		dst = append(dst, b[prev:e.at]...)
		dst = append(dst, e.data...)
		prev = e.at
	}
	return append(dst, b[prev:]...)
}

func (s *Segments) threshold() int {
	if s.Threshold <= 0 {
		return DefaultSGThreshold
	}
	return s.Threshold
}

// truncate drops the segments recorded after the first n (of bytes total).
func (s *Segments) truncate(n, bytes int) {
	clear(s.ext[n:])
	s.ext = s.ext[:n]
	s.bytes = bytes
}

// appendBin appends v as msgpack bin, or, when seg asks for it, only the bin
// header, recording v in seg as the bytes that follow.
func appendBin(b []byte, seg *Segments, v []byte) []byte {
	if seg == nil || len(v) < seg.threshold() {
		return msgp.AppendBytes(b, v)
	}
	b = msgp.AppendBytesHeader(b, uint32(len(v)))
	seg.ext = append(seg.ext, extSeg{at: len(b), data: v})
	seg.bytes += len(v)
	return b
}

// sgAppender is a message with bin fields: the catalog generates
// AppendArgsSG for exactly those.
type sgAppender interface {
	AppendArgsSG(b []byte, seg *Segments) []byte
}

// AppendPacketSG is AppendPacket for scatter-gather output: it appends the
// packet to b except for msg's bin fields of at least seg's threshold, which
// it records in seg (see Segments). The framing counts them: the N header
// holds the full args length, and the size limit applies to the whole
// packet. On error b and seg are as they were. seg.Buffers(b) then gives the
// packet's wire bytes, equal to AppendPacket's once concatenated. A nil seg,
// or a message without bin fields, gives exactly AppendPacket.
func AppendPacketSG(b []byte, seg *Segments, enc Encoding, id uint32, msg Msg, limit int) ([]byte, error) {
	sg, ok := msg.(sgAppender)
	if !ok || seg == nil {
		return AppendPacket(b, enc, id, msg, limit)
	}
	limit = clampLimit(limit)
	start, segs, ext := len(b), len(seg.ext), seg.bytes
	if enc == EncodingN {
		b = binary.BigEndian.AppendUint32(b, id)
		b = binary.BigEndian.AppendUint16(b, msg.MsgCode())
		b = append(b, 0, 0, 0, 0)
		b = sg.AppendArgsSG(b, seg)
		args := len(b) - start - HeaderSizeN + seg.bytes - ext
		binary.BigEndian.PutUint32(b[start+6:], uint32(args))
	} else {
		b = sg.AppendArgsSG(appendHeaderM(b, id, msg.MsgCode()), seg)
	}
	if n := len(b) - start + seg.bytes - ext; n > limit {
		seg.truncate(segs, ext)
		return b[:start], fmt.Errorf("%w: %s is %d bytes, limit %d", ErrPacketTooBig, Name(msg), n, limit)
	}
	return b, nil
}

// aliasDecoder is a message with []byte fields: the catalog generates
// DecodeArgsAlias for exactly those.
type aliasDecoder interface {
	DecodeArgsAlias(data []byte) error
}

// DecodeArgsAlias decodes args into msg as msg.DecodeArgs does, except that
// []byte fields (bin and Raw) alias args instead of holding copies, so a
// large payload is not copied: they are valid only as long as args is
// unchanged. Strings and lists are still the message's own. Use Clone to
// keep the message beyond that. A message without []byte fields decodes as
// with DecodeArgs.
//
// Decoding into the same value again, with either function, never writes
// into memory a previous aliasing decode pointed it at.
func DecodeArgsAlias(msg Msg, args []byte) error {
	if a, ok := msg.(aliasDecoder); ok {
		return a.DecodeArgsAlias(args)
	}
	return msg.DecodeArgs(args)
}
