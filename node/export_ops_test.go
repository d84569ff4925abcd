package node

import "bytes"

// FrameMemory is the bytes charged to b's frame memory budget now, and the
// most ever charged at once.
func FrameMemory(b *Broker) (now, peak int64) {
	return b.budget.used.Load(), b.budget.peak.Load()
}

// SetPanicHook makes every guarded stream goroutine of b call h with its name
// ("reader", "writer" or "pusher") when it starts, and the writer before each
// write.
func SetPanicHook(b *Broker, h func(goroutine string)) { b.panicHook.Store(&h) }

// PanicsRecovered is the panics counter of one stream goroutine.
func PanicsRecovered(b *Broker, goroutine string) uint64 {
	return b.metrics.panics(goroutine).Get()
}

// BytesSent is the broker's sent bytes counter.
func BytesSent(b *Broker) uint64 { return b.metrics.bytesOut.Get() }

// Metrics renders b's /metrics page.
func Metrics(b *Broker) []byte {
	var buf bytes.Buffer
	b.metrics.write(&buf)
	return buf.Bytes()
}
