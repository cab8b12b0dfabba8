//go:build !race

package main

// raceEnabled: the tests do not run under the race detector.
const raceEnabled = false
