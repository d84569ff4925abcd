package discovery

import "fmt"

// maxBencodeDepth bounds the nesting of lists and dictionaries in a
// datagram; KRPC messages nest three deep at most.
const maxBencodeDepth = 16

// checkKRPC reports whether b is exactly one well-formed bencoded
// dictionary, without allocating, or returns an error wrapping
// ErrMalformedPacket. It runs before the DHT library sees a datagram: that
// decoder allocates a string's declared length (up to 128 MiB) before it
// reads the bytes, so one forged 20-byte datagram could make it allocate
// that much, and it logs every undecodable datagram to the process's
// standard logger. Here every length is checked against the bytes
// actually present.
func checkKRPC(b []byte) error {
	if len(b) == 0 || b[0] != 'd' {
		return fmt.Errorf("%w: not a dictionary", ErrMalformedPacket)
	}
	n, err := bencodeValue(b, 0, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformedPacket, len(b)-n)
	}
	return nil
}

// bencodeValue returns the offset just past the value starting at b[i].
// Integers and string lengths follow the strict grammar (no leading zeros,
// no "-0"); dictionary keys must be strings in strictly ascending order,
// as the library's decoder demands.
func bencodeValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: truncated at byte %d", ErrMalformedPacket, i)
	}
	switch c := b[i]; {
	case c == 'i':
		j, err := bencodeInt(b, i+1, 'e', true)
		if err != nil {
			return 0, err
		}
		return j + 1, nil
	case c >= '0' && c <= '9':
		_, end, err := bencodeString(b, i)
		return end, err
	case c == 'l' || c == 'd':
		if depth >= maxBencodeDepth {
			return 0, fmt.Errorf("%w: nested deeper than %d", ErrMalformedPacket, maxBencodeDepth)
		}
		i++
		var prevKey []byte
		for first := true; ; first = false {
			if i >= len(b) {
				return 0, fmt.Errorf("%w: unterminated %c at byte %d", ErrMalformedPacket, c, i)
			}
			if b[i] == 'e' {
				return i + 1, nil
			}
			var err error
			if c == 'd' {
				if b[i] < '0' || b[i] > '9' {
					return 0, fmt.Errorf("%w: dictionary key at byte %d is not a string", ErrMalformedPacket, i)
				}
				var start int
				if start, i, err = bencodeString(b, i); err != nil {
					return 0, err
				}
				key := b[start:i]
				if !first && string(key) <= string(prevKey) {
					return 0, fmt.Errorf("%w: dictionary keys out of order at byte %d", ErrMalformedPacket, start)
				}
				prevKey = key
			}
			if i, err = bencodeValue(b, i, depth+1); err != nil {
				return 0, err
			}
		}
	default:
		return 0, fmt.Errorf("%w: unexpected byte %q at %d", ErrMalformedPacket, c, i)
	}
}

// bencodeString returns the offsets of the content of the string starting
// at b[i] (length, ':', bytes) and just past it, checking the length
// against what remains.
func bencodeString(b []byte, i int) (start, end int, err error) {
	j, err := bencodeInt(b, i, ':', false)
	if err != nil {
		return 0, 0, err
	}
	n := 0
	for _, d := range b[i:j] {
		n = n*10 + int(d-'0')
		if n > len(b) {
			return 0, 0, fmt.Errorf("%w: string at byte %d longer than the datagram", ErrMalformedPacket, i)
		}
	}
	end = j + 1 + n
	if end > len(b) {
		return 0, 0, fmt.Errorf("%w: string at byte %d longer than the datagram", ErrMalformedPacket, i)
	}
	return j + 1, end, nil
}

// bencodeInt checks the decimal digits starting at b[i] up to the
// terminator and returns the terminator's offset.
func bencodeInt(b []byte, i int, term byte, signed bool) (int, error) {
	start := i
	if signed && i < len(b) && b[i] == '-' {
		i++
	}
	digits := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	switch {
	case i >= len(b) || b[i] != term:
		return 0, fmt.Errorf("%w: bad number at byte %d", ErrMalformedPacket, start)
	case i == digits:
		return 0, fmt.Errorf("%w: number without digits at byte %d", ErrMalformedPacket, start)
	case b[digits] == '0' && i-digits > 1:
		return 0, fmt.Errorf("%w: leading zero at byte %d", ErrMalformedPacket, start)
	case b[digits] == '0' && digits > start:
		return 0, fmt.Errorf("%w: negative zero at byte %d", ErrMalformedPacket, start)
	case i-digits > 19:
		return 0, fmt.Errorf("%w: number too long at byte %d", ErrMalformedPacket, start)
	}
	return i, nil
}
