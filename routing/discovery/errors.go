package discovery

import "errors"

var (
	// ErrInvalidConfig is returned by New and Config.Validate for a
	// configuration that cannot work; the message lists every problem.
	ErrInvalidConfig = errors.New("discovery: invalid config")

	// ErrClosed is returned by Peers once the Node is closed.
	ErrClosed = errors.New("discovery: node closed")

	// ErrNoContacts is returned by Peers when the routing table is empty
	// and no join address answered (or none is configured): the lookup
	// could not start. Peers announced to this node are still returned.
	ErrNoContacts = errors.New("discovery: no DHT node to ask")

	// ErrMalformedPacket is returned by checkKRPC for a datagram that is
	// not one well-formed bencoded dictionary.
	ErrMalformedPacket = errors.New("discovery: malformed DHT packet")
)
