package node

import (
	"bufio"
	"bytes"
	"strings"
)

// writeExposition copies Prometheus text written by VictoriaMetrics/metrics
// (with ExposeMetadata on) to w, making it what `promtool check metrics`
// accepts:
//   - the library writes "# HELP <family>" without text; the text comes from
//     help (the broker's own families) or processHelp (the library's process
//     and Go runtime families), else a generic line;
//   - a few library families are renamed (processRenames) where their names
//     break Prometheus' conventions ("_count" on a counter or a gauge);
//   - the library types some monotonic process counters as gauges
//     (counterTypes).
func writeExposition(w *bufio.Writer, data []byte, help func(family string) string) {
	for line := range bytes.Lines(data) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		switch {
		case bytes.HasPrefix(line, []byte("# HELP ")):
			family := rename(strings.TrimSpace(string(line[len("# HELP "):])))
			text := help(family)
			if text == "" {
				text = processHelp[family]
			}
			if text == "" {
				text = "Process or Go runtime metric (VictoriaMetrics/metrics)."
			}
			w.WriteString("# HELP " + family + " " + escapeHelp(text) + "\n")
		case bytes.HasPrefix(line, []byte("# TYPE ")):
			f := strings.Fields(string(line[len("# TYPE "):]))
			if len(f) != 2 {
				continue
			}
			family, typ := rename(f[0]), f[1]
			if counterTypes[family] {
				typ = "counter"
			}
			w.WriteString("# TYPE " + family + " " + typ + "\n")
		default:
			name := line
			if i := bytes.IndexAny(line, "{ "); i >= 0 {
				name = line[:i]
			}
			if to, ok := processRenames[string(name)]; ok {
				w.WriteString(to)
				w.Write(line[len(name):])
			} else {
				w.Write(line)
			}
			w.WriteByte('\n')
		}
	}
}

func rename(family string) string {
	if to, ok := processRenames[family]; ok {
		return to
	}
	return family
}

// escapeHelp escapes what the text format requires in HELP text.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// processRenames maps library families whose names break Prometheus'
// naming rules to conforming ones.
var processRenames = map[string]string{
	"go_cgo_calls_count": "go_cgo_calls_total",
	"go_gc_forced_count": "go_gc_forced_total",
	"go_cpu_count":       "go_cpus",
}

// counterTypes are library families that only grow but are typed gauge.
var counterTypes = map[string]bool{
	"process_io_read_bytes_total":            true,
	"process_io_written_bytes_total":         true,
	"process_io_read_syscalls_total":         true,
	"process_io_write_syscalls_total":        true,
	"process_io_storage_read_bytes_total":    true,
	"process_io_storage_written_bytes_total": true,
}

// processHelp describes the process and Go runtime families written by
// VictoriaMetrics/metrics.
var processHelp = map[string]string{
	"go_sched_latencies_seconds":                    "Time goroutines spent runnable before running.",
	"go_mutex_wait_seconds_total":                   "Time goroutines spent blocked on sync.Mutex and sync.RWMutex.",
	"go_gc_mark_assist_cpu_seconds_total":           "CPU time goroutines spent assisting the garbage collector.",
	"go_gc_cpu_seconds_total":                       "CPU time spent in the garbage collector.",
	"go_gc_pauses_seconds":                          "Stop-the-world pauses of the garbage collector.",
	"go_scavenge_cpu_seconds_total":                 "CPU time spent returning memory to the operating system.",
	"go_memlimit_bytes":                             "The Go runtime's soft memory limit (GOMEMLIMIT).",
	"go_memstats_alloc_bytes":                       "Bytes of allocated heap objects.",
	"go_memstats_alloc_bytes_total":                 "Bytes allocated on the heap since start.",
	"go_memstats_buck_hash_sys_bytes":               "Bytes used by the profiling bucket hash table.",
	"go_memstats_frees_total":                       "Heap objects freed since start.",
	"go_memstats_gc_cpu_fraction":                   "Share of CPU time used by the garbage collector since start.",
	"go_memstats_gc_sys_bytes":                      "Bytes used for garbage collection metadata.",
	"go_memstats_heap_alloc_bytes":                  "Bytes of allocated heap objects.",
	"go_memstats_heap_idle_bytes":                   "Bytes of heap spans without objects.",
	"go_memstats_heap_inuse_bytes":                  "Bytes of heap spans with at least one object.",
	"go_memstats_heap_objects":                      "Allocated heap objects.",
	"go_memstats_heap_released_bytes":               "Bytes of heap memory returned to the operating system.",
	"go_memstats_heap_sys_bytes":                    "Bytes of heap memory obtained from the operating system.",
	"go_memstats_last_gc_time_seconds":              "Time of the last garbage collection, in seconds since the Unix epoch.",
	"go_memstats_lookups_total":                     "Pointer lookups by the runtime since start.",
	"go_memstats_mallocs_total":                     "Heap objects allocated since start.",
	"go_memstats_mcache_inuse_bytes":                "Bytes of mcache structures in use.",
	"go_memstats_mcache_sys_bytes":                  "Bytes of memory obtained for mcache structures.",
	"go_memstats_mspan_inuse_bytes":                 "Bytes of mspan structures in use.",
	"go_memstats_mspan_sys_bytes":                   "Bytes of memory obtained for mspan structures.",
	"go_memstats_next_gc_bytes":                     "Heap size at which the next garbage collection starts.",
	"go_memstats_other_sys_bytes":                   "Bytes of other runtime allocations.",
	"go_memstats_stack_inuse_bytes":                 "Bytes of stack spans in use.",
	"go_memstats_stack_sys_bytes":                   "Bytes of stack memory obtained from the operating system.",
	"go_memstats_sys_bytes":                         "Bytes of memory obtained from the operating system.",
	"go_cgo_calls_total":                            "Calls from Go to C since start.",
	"go_cpus":                                       "Logical CPUs usable by the process.",
	"go_gc_duration_seconds":                        "Garbage collection pause durations.",
	"go_gc_forced_total":                            "Garbage collections forced by the application (runtime.GC).",
	"go_gomaxprocs":                                 "GOMAXPROCS: CPUs that can execute Go code at once.",
	"go_goroutines":                                 "Goroutines that exist now.",
	"go_threads":                                    "Operating system threads created by the runtime.",
	"go_info":                                       "Go version the binary was built with (value 1).",
	"go_info_ext":                                   "Go build platform (value 1).",
	"process_cpu_seconds_system_total":              "CPU time spent in the kernel on behalf of the process.",
	"process_cpu_seconds_total":                     "CPU time of the process, user and system.",
	"process_cpu_seconds_user_total":                "CPU time spent in user mode.",
	"process_major_pagefaults_total":                "Page faults that needed disk I/O.",
	"process_minor_pagefaults_total":                "Page faults served without disk I/O.",
	"process_num_threads":                           "Operating system threads of the process.",
	"process_resident_memory_bytes":                 "Resident memory size.",
	"process_start_time_seconds":                    "Start time of the process, in seconds since the Unix epoch.",
	"process_virtual_memory_bytes":                  "Virtual memory size.",
	"process_virtual_memory_peak_bytes":             "Peak virtual memory size.",
	"process_resident_memory_peak_bytes":            "Peak resident memory size.",
	"process_resident_memory_anon_bytes":            "Resident anonymous memory (heap, stacks).",
	"process_resident_memory_file_bytes":            "Resident file-backed memory (mapped segments, binary).",
	"process_resident_memory_shared_bytes":          "Resident shared memory.",
	"process_io_read_bytes_total":                   "Bytes read by the process, page cache included.",
	"process_io_written_bytes_total":                "Bytes written by the process, page cache included.",
	"process_io_read_syscalls_total":                "Read system calls.",
	"process_io_write_syscalls_total":               "Write system calls.",
	"process_io_storage_read_bytes_total":           "Bytes read from storage devices.",
	"process_io_storage_written_bytes_total":        "Bytes written to storage devices.",
	"process_pressure_cpu_waiting_seconds_total":    "Time some tasks of the process's cgroup waited for CPU (PSI).",
	"process_pressure_cpu_stalled_seconds_total":    "Time all tasks of the process's cgroup waited for CPU (PSI).",
	"process_pressure_io_waiting_seconds_total":     "Time some tasks of the process's cgroup waited for I/O (PSI).",
	"process_pressure_io_stalled_seconds_total":     "Time all tasks of the process's cgroup waited for I/O (PSI).",
	"process_pressure_memory_waiting_seconds_total": "Time some tasks of the process's cgroup waited for memory (PSI).",
	"process_pressure_memory_stalled_seconds_total": "Time all tasks of the process's cgroup waited for memory (PSI).",
	"process_cgroup_cpu_throttled_seconds_total":    "Time the process's cgroup was throttled by its CPU quota.",
	"process_max_fds":                               "Limit on open file descriptors.",
	"process_open_fds":                              "Open file descriptors.",
}
