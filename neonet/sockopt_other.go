//go:build !linux

package neonet

import (
	"net"
	"syscall"
	"time"
)

// setUserTimeout is a no-op where TCP_USER_TIMEOUT does not exist.
func setUserTimeout(net.Conn, time.Duration) {}

// sendQueue cannot read the kernel's send queue here.
func sendQueue(syscall.RawConn) (int, bool) { return 0, false }

// readable cannot peek here: report the socket readable, so that
// LinkListener skips its first-byte wait.
func readable(uintptr) bool { return true }
