package bench

import (
	"os"
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

func TestParseServingLine(t *testing.T) {
	addr, admin, ok := parseServingLine("rafka: broker b-7f3a serving on 127.0.0.1:40001 (admin 127.0.0.1:40002), data in /tmp/rafka-bench-1")
	if !ok || addr != "127.0.0.1:40001" || admin != "127.0.0.1:40002" {
		t.Fatalf("%q %q %v", addr, admin, ok)
	}
	_, admin, ok = parseServingLine("rafka: broker b serving on [::1]:9092 (admin disabled), data in d")
	if !ok || admin != "" {
		t.Fatalf("admin disabled: %q %v", admin, ok)
	}
	if _, _, ok := parseServingLine("time=... level=INFO msg=starting"); ok {
		t.Fatal("log line taken for the serving line")
	}
}
