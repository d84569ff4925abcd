package bench

import (
	"context"
	"testing"
	"time"
)

func TestMeasureTransport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := MeasureTransport(ctx, TransportConfig{
		Duration: 100 * time.Millisecond, MaxBytes: 4 << 20, ChunkBytes: 16 << 10, RTTCount: 50, RTTBytes: 32,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := r.Transport
	if tr == nil {
		t.Fatal("no transport figures")
	}
	// Upload stops at MaxBytes or the deadline, whichever is first; the
	// server's count was checked against what was sent.
	if tr.UploadBytes <= 0 || tr.UploadBytes > 4<<20+16<<10 {
		t.Errorf("upload bytes %d", tr.UploadBytes)
	}
	if tr.DownloadBytes <= 0 || tr.DownloadBytes%(16<<10) != 0 || tr.DownloadBytes > 4<<20 {
		t.Errorf("download bytes %d: want whole 16 KiB chunks, at most 4 MiB", tr.DownloadBytes)
	}
	if tr.UploadMBPerSec <= 0 || tr.DownloadMBPerSec <= 0 {
		t.Errorf("rates %v %v", tr.UploadMBPerSec, tr.DownloadMBPerSec)
	}
	if tr.RTT.Count < 1 || tr.RTT.Count > 50 || tr.RTT.P50Ms <= 0 || tr.RTT.MaxMs < tr.RTT.P50Ms {
		t.Errorf("rtt %+v", tr.RTT)
	}
	if r.MBPerSec != tr.UploadMBPerSec || r.P50Ms == nil || *r.P50Ms != tr.RTT.P50Ms {
		t.Errorf("result headline %+v does not restate the transport figures", r)
	}
}
