package discovery

import (
	"errors"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

func TestCheckKRPC(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", true},
		{"de", true},
		{"d1:lli-5ei0e0:dee1:ni123ee", true},
		{"", false},
		{"l", false},
		{"d", false},
		{"di1e1:ae", false},                    // integer key
		{"d1:ai01ee", false},                   // leading zero
		{"d1:ai-0ee", false},                   // negative zero
		{"d1:ai-ee", false},                    // no digits
		{"d1:a01:xe", false},                   // string length with leading zero
		{"d1:t134217727:e", false},             // string longer than the datagram
		{"d1:a2:xe", false},                    // truncated string
		{"d1:a1:xe ", false},                   // trailing byte
		{"d1:ax1:xe", false},                   // unknown type
		{"d1:ai99999999999999999999ee", false}, // number too long
		{"d1:a" + strings.Repeat("l", 100) + strings.Repeat("e", 101), false}, // too deep
	} {
		err := checkKRPC([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("checkKRPC(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrMalformedPacket) {
			t.Errorf("checkKRPC(%q) = %v, not ErrMalformedPacket", tc.in, err)
		}
	}
}

// FuzzCheckKRPC: checkKRPC never panics, and what it accepts the bencode
// decoder of the DHT library decodes in full.
func FuzzCheckKRPC(f *testing.F) {
	for _, s := range []string{
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
		"d1:rd2:id20:abcdefghij01234567895:nodes0:e1:t2:aa1:y1:re",
		"de", "d1:lli-5ei0e0:dee1:ni123ee", "d1:t134217727:e", "d1:ai01ee",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkKRPC(b) != nil {
			return
		}
		var v any
		if err := bencode.Unmarshal(b, &v); err != nil {
			t.Fatalf("checkKRPC accepted %q, the library's decoder says %v", b, err)
		}
		if _, ok := v.(map[string]any); !ok {
			t.Fatalf("checkKRPC accepted %q, which decodes to %T", b, v)
		}
	})
}
