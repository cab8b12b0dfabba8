package handshake

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: Dial
// and Accept promise that none of theirs outlives the call.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
