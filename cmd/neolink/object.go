package main

import (
	"context"
	"crypto/sha1"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/neolink/neolink/proto"
)

// The test objects that serve returns: the object with oid has
// oid & 0xffffffff bytes of data, data[i] = byte(i % 251), and its checksum
// is the SHA-1 of the data, as NEO defines it (docs/reference.md §6).

// objectSize returns the data length of the test object oid.
func objectSize(oid uint64) uint64 { return oid & 0xffffffff }

// objectStore hands out test object data and checksums. The data of every
// size is a prefix of one shared pattern, which only grows; slices it
// returns are read-only and stay valid. It is safe for concurrent use.
type objectStore struct {
	// hashing bounds the checksums computed at once to the number of CPUs:
	// a peer asking for many large objects must not leave thousands of
	// goroutines hashing, which would starve every other goroutine of the
	// process (handshakes, other links' readers) for minutes.
	hashing *semaphore.Weighted

	mu      sync.Mutex
	pattern []byte
	sums    map[uint64][]byte // checksum by size, a small cache
}

func newObjectStore() *objectStore {
	return &objectStore{hashing: semaphore.NewWeighted(int64(runtime.GOMAXPROCS(0)))}
}

// maxObjectSize is the largest object whose answer can fit in a packet.
const maxObjectSize = proto.MaxPacketSize

// get returns the data of size bytes and its SHA-1. It fails for objects
// too large for any packet, and with ctx's error if ctx ends while it waits
// to hash. The hash is computed outside the lock, so that a large object
// does not hold up requests for others.
func (s *objectStore) get(ctx context.Context, size uint64) (data, sum []byte, err error) {
	if size > maxObjectSize {
		return nil, nil, fmt.Errorf("object of %d bytes does not fit in a packet (limit %d bytes)", size, maxObjectSize)
	}
	s.mu.Lock()
	if uint64(len(s.pattern)) < size {
		n := min(max(size, 2*uint64(len(s.pattern)), 4096), maxObjectSize)
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i % 251)
		}
		s.pattern = p
	}
	data = s.pattern[:size:size]
	sum = s.sums[size]
	s.mu.Unlock()
	if sum != nil {
		return data, sum, nil
	}
	if err := s.hashing.Acquire(ctx, 1); err != nil {
		return nil, nil, err
	}
	h := sha1.Sum(data)
	s.hashing.Release(1)
	sum = h[:]
	s.mu.Lock()
	if s.sums == nil || len(s.sums) >= 64 {
		s.sums = make(map[uint64][]byte)
	}
	s.sums[size] = sum
	s.mu.Unlock()
	return data, sum, nil
}
