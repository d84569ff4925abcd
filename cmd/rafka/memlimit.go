package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitShare is the part of the container's memory limit given to
// the Go runtime as its soft limit when --memory-limit is auto. The rest is
// for what the runtime does not count and the kernel charges to the
// container all the same: dirty pages of segment writes not yet written
// back, thread stacks outside Go, and the socket buffers of the UDP port.
const memoryLimitShare = 0.8

// minMemoryLimit is the smallest --memory-limit accepted.
const minMemoryLimit = 64 << 20

// cgroup files that hold the memory limit: v2 first, then v1.
var cgroupMemoryFiles = []string{
	"/sys/fs/cgroup/memory.max",
	"/sys/fs/cgroup/memory/memory.limit_in_bytes",
}

// applyMemoryLimit sets the Go runtime's soft memory limit from --memory-limit:
// "auto" takes memoryLimitShare of the cgroup's limit when the process runs
// under one (a container) and leaves the runtime alone otherwise; "none"
// leaves it alone; a size (2GiB, 512MiB, 1000000) sets it. GOMEMLIMIT in the
// environment wins over auto: the runtime applied it already. It returns
// the limit set (0: none).
func applyMemoryLimit(flag string, logger *slog.Logger) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(flag)) {
	case "none", "off":
		return 0, nil
	case "auto", "":
		if os.Getenv("GOMEMLIMIT") != "" {
			return 0, nil
		}
		limit, file := cgroupMemoryLimit(cgroupMemoryFiles)
		if limit <= 0 {
			return 0, nil
		}
		set := int64(float64(limit) * memoryLimitShare)
		debug.SetMemoryLimit(set)
		logger.Info("Go memory limit set from the container's", "limit_bytes", set, "container_limit_bytes", limit, "from", file)
		return set, nil
	}
	n, err := parseSize(flag)
	if err != nil {
		return 0, fmt.Errorf("--memory-limit: %w", err)
	}
	debug.SetMemoryLimit(n)
	return n, nil
}

// cgroupMemoryLimit returns the first finite limit found in files and the
// file it came from; 0 when none is set ("max", a v1 "unlimited" value
// near MaxInt64, or no such file).
func cgroupMemoryLimit(files []string) (int64, string) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, ""
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		// cgroup v1 writes "no limit" as the largest page-aligned int64.
		if n >= math.MaxInt64/2 || n >= hostMemory() {
			return 0, ""
		}
		return n, f
	}
	return 0, ""
}

// hostMemory is the machine's memory from /proc/meminfo (MaxInt64 when
// unknown): a cgroup limit at or above it limits nothing.
func hostMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return math.MaxInt64
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	return math.MaxInt64
}

// parseSize reads a byte count: digits with an optional unit B, KiB, MiB,
// GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q: want auto, none or a size such as 2GiB", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	units := map[string]int64{"": 1, "b": 1,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}
	mul, ok := units[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s, s[i:])
	}
	if n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q: too large", s)
	}
	if n*mul < minMemoryLimit {
		return 0, fmt.Errorf("%q: below %d MiB, the broker would spend its time collecting garbage (none: no limit)", s, minMemoryLimit>>20)
	}
	return n * mul, nil
}
