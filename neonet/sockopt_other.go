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
