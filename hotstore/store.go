package hotstore

// This file holds Store, the interface both rings implement.

// Store is the contract both rings implement (see the package
// documentation), so that a broker can pick Ring or LockFreeRing by
// configuration and measure them on its own hardware.
type Store interface {
	// Append copies one entry covering [baseOffset, nextOffset) in; one
	// writer only.
	Append(baseOffset, nextOffset int64, data []byte)
	// Read appends to dst the entries from the one holding offset, at most
	// maxBytes (at least one entry); ok is false on a miss.
	Read(offset int64, maxBytes int, dst []byte) (out []byte, next int64, ok bool)
	// Reset empties the store; one writer only.
	Reset()
	// Oldest and Next bound the offsets held, [Oldest, Next).
	Oldest() int64
	Next() int64
	// Stats counts hits and misses and reports the bytes held.
	Stats() Stats
}

var (
	_ Store = (*Ring)(nil)
	_ Store = (*LockFreeRing)(nil)
)
