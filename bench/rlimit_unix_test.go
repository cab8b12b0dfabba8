//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// ensureFileLimit raises RLIMIT_NOFILE to at least n open files (the hard
// limit too when it is lower, which needs privilege) or says why it cannot.
func ensureFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= n {
		return nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("RLIMIT_NOFILE is %d (hard %d) and cannot be raised to %d: %w", lim.Cur, lim.Max, n, err)
	}
	return nil
}
