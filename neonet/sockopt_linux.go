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

// tcpInfoBytesAcked is the offset of tcpi_bytes_acked (a u64, Linux 4.1 and
// later) in struct tcp_info.
const tcpInfoBytesAcked = 120

// bytesAcked returns how many bytes the peer's kernel has acknowledged on
// the TCP socket raw; ok is false where that cannot be known.
func bytesAcked(raw syscall.RawConn) (n uint64, ok bool) {
	if raw == nil {
		return 0, false
	}
	var info [232]byte
	size := uint32(len(info))
	var errno syscall.Errno
	err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	})
	if err != nil || errno != 0 || size < tcpInfoBytesAcked+8 {
		return 0, false
	}
	return *(*uint64)(unsafe.Pointer(&info[tcpInfoBytesAcked])), true
}

// readable reports whether the socket fd has a byte (or EOF, or an error)
// to read, without consuming it.
func readable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN && err != syscall.EINTR
}
