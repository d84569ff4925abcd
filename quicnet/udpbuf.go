package quicnet

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
)

// wantUDPBuffer is the socket buffer size quic-go asks for (7.5 MB); below
// it the kernel drops datagrams under load.
const wantUDPBuffer = 7500000

// udpBufferFix is the command given to users in the warning.
const udpBufferFix = "sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000"

// quicGoWarningEnv silences quic-go's own buffer warning (printed through the
// log package, once per process) so the user sees one warning, ours.
const quicGoWarningEnv = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"

// capNetAdmin is the capability bit that lets quic-go raise socket buffers
// above the sysctl limits (SO_RCVBUFFORCE / SO_SNDBUFFORCE).
const capNetAdmin = 12

var udpBufferOnce sync.Once

// CheckUDPBuffers warns once per process, through logger, when the kernel's
// UDP buffer limits (net.core.rmem_max, net.core.wmem_max) are below 7.5 MB
// and the process cannot override them (it lacks CAP_NET_ADMIN), with the
// sysctl that fixes it. It also silences quic-go's own warning about the
// same condition. Listen and Dial call it; outside Linux it only does the
// latter. A nil logger uses slog.Default().
func CheckUDPBuffers(logger *slog.Logger) {
	udpBufferOnce.Do(func() {
		if _, set := os.LookupEnv(quicGoWarningEnv); !set {
			os.Setenv(quicGoWarningEnv, "true")
		}
		if logger == nil {
			logger = slog.Default()
		}
		rmem, rerr := readSysctlInt("/proc/sys/net/core/rmem_max")
		wmem, werr := readSysctlInt("/proc/sys/net/core/wmem_max")
		if rerr != nil || werr != nil {
			return // not Linux, or /proc not mounted: nothing to tell
		}
		status, _ := os.ReadFile("/proc/self/status")
		if msg := udpBufferWarning(rmem, wmem, hasCapability(string(status), capNetAdmin)); msg != "" {
			logger.Warn(msg, "rmem_max", rmem, "wmem_max", wmem, "want", wantUDPBuffer, "fix", udpBufferFix)
		}
	})
}

// udpBufferWarning returns the warning for the given limits, or "" when
// there is nothing to warn about.
func udpBufferWarning(rmem, wmem int64, netAdmin bool) string {
	if netAdmin || (rmem >= wantUDPBuffer && wmem >= wantUDPBuffer) {
		return ""
	}
	return "quicnet: UDP socket buffers are limited below 7.5 MB; QUIC will drop datagrams under load and run slower. Fix: " + udpBufferFix
}

func readSysctlInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// hasCapability reports whether the CapEff line of a /proc/<pid>/status text
// has bit capBit set.
func hasCapability(status string, capBit uint) bool {
	for line := range strings.Lines(status) {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		return err == nil && v&(1<<capBit) != 0
	}
	return false
}
