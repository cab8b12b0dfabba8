//go:build race

package neonet

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = true
