package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMaxAckGap(t *testing.T) {
	acks := []ack{
		{partition: 0, ackedMs: 100}, {partition: 1, ackedMs: 105},
		{partition: 0, ackedMs: 400}, {partition: 1, ackedMs: 120},
		{partition: 0, ackedMs: 150}, // out of order: sorted per partition
	}
	if got := maxAckGap(acks); got != 250 {
		t.Fatalf("maxAckGap = %d, want 250 (partition 0: 150 -> 400)", got)
	}
	if got := maxAckGap(nil); got != 0 {
		t.Fatalf("maxAckGap(nil) = %d, want 0", got)
	}
}

func TestMarks(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(filepath.Join(dir, "mark-delete"), []byte("1000\n")); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(dir, "mark-late"), []byte("5000")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mark-garbage"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	acks := []ack{
		{partition: 0, sentMs: 990, ackedMs: 1010},  // sent before the mark: ignored
		{partition: 0, sentMs: 1000, ackedMs: 1300}, // first after it
		{partition: 0, sentMs: 1005, ackedMs: 1200}, // acknowledged sooner
		{partition: 1, sentMs: 1100, ackedMs: 1900},
		{partition: 7, sentMs: 1100, ackedMs: 1150}, // beyond --partitions: ignored
	}
	got := marks(dir, acks, 2)
	want := []markResult{
		{Name: "delete", AtMs: 1000, MaxMs: 900, PerPartsMs: []int64{200, 900}},
		{Name: "late", AtMs: 5000, MaxMs: -1, PerPartsMs: []int64{-1, -1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("marks = %+v, want %+v", got, want)
	}
}
