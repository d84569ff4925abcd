package raftlog

import (
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

// seedFile returns the log file of a short run with every kind of record.
func seedFile(f *testing.F) []byte {
	dir := f.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	mustSave(f, s, hs(1, 1, 2), ents(1, 1, 3), nil)
	if _, err := s.CreateSnapshot(2, nil, []byte("state@2")); err != nil {
		f.Fatal(err)
	}
	if err := s.Compact(1); err != nil {
		f.Fatal(err)
	}
	mustSave(f, s, hs(2, 1, 3), ents(2, 3, 4), nil)
	mustSave(f, s, hs(2, 1, 10), nil, snap(10, 2, []uint64{1}, "state@10"))
	s.Close()
	data, err := os.ReadFile(filepath.Join(dir, logFileName))
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzParseRecord checks that the record decoder never panics nor reads past
// its input, and that a record it accepts re-encodes to an equal record.
func FuzzParseRecord(f *testing.F) {
	data := seedFile(f)
	f.Add(data[len(fileMagic):])
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		payload, n, err := parseRecord(b, DefaultMaxRecordBytes)
		if err != nil {
			if !errors.Is(err, ErrTorn) {
				t.Fatalf("error %v is not ErrTorn", err)
			}
			return
		}
		if n > len(b) || n != recordHeaderSize+len(payload) {
			t.Fatalf("consumed %d of %d bytes, payload %d", n, len(b), len(payload))
		}
		m, err := decodeSave(payload)
		if err != nil {
			return
		}
		enc, err := appendRecord(nil, m, DefaultMaxRecordBytes)
		if err != nil {
			t.Fatal(err)
		}
		payload2, _, err := parseRecord(enc, DefaultMaxRecordBytes)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeSave(payload2)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m, m2) {
			t.Fatalf("round trip changed the record:\n%v\n%v", m, m2)
		}
	})
}

// FuzzReplay replays arbitrary files: no panic, and a file that opens gives
// a consistent log that reads back the same after a reopen.
func FuzzReplay(f *testing.F) {
	data := seedFile(f)
	f.Add(data)
	f.Add(data[:len(data)-3])
	f.Add([]byte(fileMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		r, err := replay(b, DefaultMaxRecordBytes)
		if err != nil {
			return
		}
		st := observe(t, r.ms)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, logFileName), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("replay accepted the file, Open did not: %v", err)
		}
		defer s.Close()
		if got := observe(t, s); !equalState(got, st) {
			t.Fatalf("Open and replay disagree:\n%v\n%v", got, st)
		}
	})
}

// FuzzReplayRecords replays files of well-formed records with arbitrary
// payloads, so that the checks behind the checksum are exercised: each
// chunk of the input, its first byte giving its length, becomes a record.
func FuzzReplayRecords(f *testing.F) {
	data := seedFile(f)
	var seed []byte
	for off := len(fileMagic); off < len(data); {
		p, n, err := parseRecord(data[off:], DefaultMaxRecordBytes)
		if err != nil || len(p) > 255 {
			break
		}
		seed = append(append(seed, byte(len(p))), p...)
		off += n
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		file := []byte(fileMagic)
		for len(b) > 0 {
			n := min(int(b[0]), len(b)-1)
			if n == 0 {
				break
			}
			file = wrapRecord(file, b[1:1+n])
			b = b[1+n:]
		}
		r, err := replay(file, DefaultMaxRecordBytes)
		if err != nil {
			return
		}
		observe(t, r.ms)
		if r.good != len(file) {
			t.Fatalf("well-formed records cut at %d of %d", r.good, len(file))
		}
	})
}

// wrapRecord appends payload as a record with a valid checksum.
func wrapRecord(dst, payload []byte) []byte {
	m := len(dst)
	dst = append(dst, make([]byte, recordHeaderSize)...)
	dst = append(dst, payload...)
	h := dst[m:]
	h[0], h[1], h[2], h[3] = byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), byte(len(payload)>>24)
	crc := crc32Update(0, h[:4])
	crc = crc32Update(crc, payload)
	h[4], h[5], h[6], h[7] = byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24)
	return dst
}

func crc32Update(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }
