package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat. Linux fixes it
// at 100 for user space whatever the kernel's internal tick rate.
const userHZ = 100

// ProcStats is the resource use of a process.
type ProcStats struct {
	// CPUSeconds is user plus system CPU time, in seconds (10 ms resolution).
	// In a Result it covers the workload only (the difference of two reads).
	CPUSeconds float64 `json:"cpu_seconds"`
	// PeakRSSBytes is the largest resident set size of the process's life
	// (VmHWM), in bytes; 0 when unknown.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// Source says where the figures came from: "proc" (the local child's
	// /proc files) or "metrics" (a broker's process_* gauges).
	Source string `json:"source"`
}

// Sub returns the CPU time spent between before and s, keeping s's peak RSS.
func (s ProcStats) Sub(before ProcStats) ProcStats {
	s.CPUSeconds -= before.CPUSeconds
	return s
}

// ReadProcStats reads pid's CPU time from /proc/<pid>/stat and its peak RSS
// from /proc/<pid>/status.
func ReadProcStats(pid int) (ProcStats, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStats{}, fmt.Errorf("bench: %w", err)
	}
	cpu, err := parseProcStatCPU(stat)
	if err != nil {
		return ProcStats{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStats{}, fmt.Errorf("bench: %w", err)
	}
	hwm, err := parseProcStatusHWM(status)
	if err != nil {
		return ProcStats{}, err
	}
	return ProcStats{CPUSeconds: cpu, PeakRSSBytes: hwm, Source: "proc"}, nil
}

// parseProcStatCPU returns utime+stime in seconds from the contents of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself contain spaces and parentheses, so fields are counted from the
// last ')': state is field 3, utime 14, stime 15.
func parseProcStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("bench: /proc stat: %d fields after the command name", len(fields))
	}
	u, err1 := strconv.ParseUint(fields[utime], 10, 64)
	s, err2 := strconv.ParseUint(fields[stime], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc stat: utime %q stime %q", fields[utime], fields[stime])
	}
	return float64(u+s) / userHZ, nil
}

// parseProcStatusHWM returns VmHWM in bytes from /proc/<pid>/status.
func parseProcStatusHWM(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: /proc status: VmHWM %q", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc status: VmHWM %q", rest)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("bench: /proc status: no VmHWM line")
}

// ParseProcessMetrics extracts process_cpu_seconds_total and the peak
// resident memory from a Prometheus text exposition (a broker's /metrics).
// VictoriaMetrics/metrics exports process_resident_memory_peak_bytes; when
// it is absent, process_resident_memory_bytes (the current size) stands in.
func ParseProcessMetrics(text []byte) (ProcStats, error) {
	var st ProcStats
	var haveCPU, havePeak bool
	var current int64
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ") // drop a timestamp
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_cpu_seconds_total":
			st.CPUSeconds, haveCPU = f, true
		case "process_resident_memory_peak_bytes":
			st.PeakRSSBytes, havePeak = int64(f), true
		case "process_resident_memory_bytes":
			current = int64(f)
		}
	}
	if !haveCPU {
		return ProcStats{}, fmt.Errorf("bench: metrics: no process_cpu_seconds_total")
	}
	if !havePeak {
		st.PeakRSSBytes = current
	}
	st.Source = "metrics"
	return st, nil
}
