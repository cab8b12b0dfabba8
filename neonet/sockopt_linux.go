package neonet

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// tcpUserTimeout is TCP_USER_TIMEOUT from linux/tcp.h (not in package syscall).
const tcpUserTimeout = 18

// setUserTimeout bounds how long data may stay unacknowledged before the
// kernel fails the connection (by default it retransmits for ~15 minutes).
// It is best effort: non-TCP connections are left alone.
func setUserTimeout(nc net.Conn, d time.Duration) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	ms := int(d / time.Millisecond)
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, ms)
	})
}

// siocOutq is SIOCOUTQ (= TIOCOUTQ): the bytes in a TCP socket's send
// queue, sent but not acknowledged by the peer or not sent yet.
const siocOutq = 0x5411

// sendQueue returns how many bytes sit in nc's kernel send queue; ok is
// false where that cannot be known.
func sendQueue(raw syscall.RawConn) (n int, ok bool) {
	if raw == nil {
		return 0, false
	}
	var v int32
	var errno syscall.Errno
	err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, siocOutq, uintptr(unsafe.Pointer(&v)))
	})
	if err != nil || errno != 0 {
		return 0, false
	}
	return int(v), true
}

// readable reports whether the socket fd has a byte (or EOF, or an error)
// to read, without consuming it.
func readable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN && err != syscall.EINTR
}
