//go:build !linux

package neonet

import (
	"net"
	"syscall"
	"time"
)

// setUserTimeout is a no-op where TCP_USER_TIMEOUT does not exist.
func setUserTimeout(net.Conn, time.Duration) {}

// bytesAcked cannot read the kernel's acknowledgements here.
func bytesAcked(syscall.RawConn) (uint64, bool) { return 0, false }

// readable cannot peek here: report the socket readable, so that
// LinkListener skips its first-byte wait.
func readable(uintptr) bool { return true }
