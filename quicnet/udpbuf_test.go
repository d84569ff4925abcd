package quicnet

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
)

func TestUDPBufferWarning(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rmem, wmem int64
		netAdmin   bool
		warn       bool
	}{
		{"both small", 212992, 212992, false, true},
		{"read small", 212992, 7500000, false, true},
		{"write small", 7500000, 4194304, false, true},
		{"both enough", 7500000, 8000000, false, false},
		{"small but CAP_NET_ADMIN", 212992, 212992, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := udpBufferWarning(tc.rmem, tc.wmem, tc.netAdmin)
			if (msg != "") != tc.warn {
				t.Fatalf("warning %q, want warn=%v", msg, tc.warn)
			}
			if tc.warn && !strings.Contains(msg, udpBufferFix) {
				t.Errorf("warning %q lacks the fix", msg)
			}
		})
	}
}

func TestHasCapability(t *testing.T) {
	status := "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n"
	if !hasCapability(status, capNetAdmin) {
		t.Error("full capability set: want CAP_NET_ADMIN")
	}
	if hasCapability("CapEff:\t0000000000000400\n", capNetAdmin) {
		t.Error("only bit 10 set: want no CAP_NET_ADMIN")
	}
	if hasCapability("Name:\tx\n", capNetAdmin) {
		t.Error("no CapEff line: want false")
	}
}

func TestCheckUDPBuffersSilencesQuicGo(t *testing.T) {
	var buf bytes.Buffer
	CheckUDPBuffers(slog.New(slog.NewTextHandler(&buf, nil)))
	if v := os.Getenv(quicGoWarningEnv); v == "" {
		t.Errorf("%s not set", quicGoWarningEnv)
	}
	// Once per process: a second call logs nothing new.
	n := buf.Len()
	CheckUDPBuffers(slog.New(slog.NewTextHandler(&buf, nil)))
	if buf.Len() != n {
		t.Errorf("second call logged %q", buf.String()[n:])
	}
}
