package bench

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	stat := "4242 (rafka (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 12 0 99 1000 300 18446744073709551615\n"
	cpu, err := parseProcStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if cpu != 3.8 {
		t.Errorf("cpu = %v, want 3.8 (250+130 ticks)", cpu)
	}
	if _, err := parseProcStatCPU([]byte("4242 (rafka) S 1 2")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestParseProcStatusHWM(t *testing.T) {
	status := "Name:\trafka\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n"
	got, err := parseProcStatusHWM([]byte(status))
	if err != nil || got != 51200<<10 {
		t.Fatalf("VmHWM = %d, %v", got, err)
	}
	if _, err := parseProcStatusHWM([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmHWM accepted")
	}
}

func TestReadProcStatsSelf(t *testing.T) {
	st, err := ReadProcStats(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PeakRSSBytes <= 0 || st.CPUSeconds < 0 || st.Source != "proc" {
		t.Fatalf("%+v", st)
	}
	later := ProcStats{CPUSeconds: st.CPUSeconds + 1.5, PeakRSSBytes: st.PeakRSSBytes}
	if d := later.Sub(st); abs(d.CPUSeconds-1.5) > 1e-9 || d.PeakRSSBytes != st.PeakRSSBytes {
		t.Fatalf("Sub = %+v", d)
	}
}

func TestParseProcessMetrics(t *testing.T) {
	text := "# HELP x\nprocess_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 1000\nprocess_resident_memory_peak_bytes 2048 1700000000\nother 1\n"
	st, err := ParseProcessMetrics([]byte(text))
	if err != nil || st.CPUSeconds != 12.5 || st.PeakRSSBytes != 2048 || st.Source != "metrics" {
		t.Fatalf("%+v %v", st, err)
	}
	st, err = ParseProcessMetrics([]byte("process_cpu_seconds_total 1\nprocess_resident_memory_bytes 1000\n"))
	if err != nil || st.PeakRSSBytes != 1000 {
		t.Fatalf("current RSS stands in for the peak: %+v %v", st, err)
	}
	if _, err := ParseProcessMetrics([]byte("foo 1\n")); err == nil {
		t.Error("metrics without CPU accepted")
	}
}

func TestReadReadyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ready.json")
	if _, ok, err := readReadyFile(path); ok || err != nil {
		t.Fatalf("missing file: ok %v err %v", ok, err)
	}
	// What `rafka serve --ready-file` writes (cmd/rafka tests check the
	// broker's side against the same field names).
	content := `{"broker_id":"b-7f3a","listen_addr":"127.0.0.1:40001","admin_addr":"","data_dir":"/tmp/d","pid":42}`
	if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, ok, err := readReadyFile(path)
	want := ReadyInfo{BrokerID: "b-7f3a", ListenAddr: "127.0.0.1:40001", DataDir: "/tmp/d", Pid: 42}
	if !ok || err != nil || info != want {
		t.Fatalf("got %+v ok %v err %v, want %+v", info, ok, err, want)
	}
	for _, bad := range []string{"{", `{"broker_id":"b"}`} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := readReadyFile(path); ok || err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
