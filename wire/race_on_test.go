//go:build race

package wire

// raceEnabled: the race detector makes sync.Pool drop buffers at random, so
// tests of pool reuse do not hold under it.
const raceEnabled = true
