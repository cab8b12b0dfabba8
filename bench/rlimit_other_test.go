//go:build !unix

package bench

import "errors"

// ensureFileLimit cannot raise the limit on this system.
func ensureFileLimit(n uint64) error {
	return errors.New("raising the open-file limit is only implemented on Unix")
}
