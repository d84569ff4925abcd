package quicnet

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	qc := c.quicConfig(true)
	if qc.MaxIncomingStreams != 1024 || qc.MaxStreamReceiveWindow != 16<<20 ||
		qc.MaxConnectionReceiveWindow != 64<<20 || qc.MaxIdleTimeout != 30*time.Second ||
		qc.KeepAlivePeriod != 10*time.Second || qc.HandshakeIdleTimeout != 5*time.Second {
		t.Errorf("unexpected server quic.Config %+v", qc)
	}
	if c.MaxConnections != DefaultMaxConnections || c.StatelessResetKey != nil {
		t.Errorf("MaxConnections %d, StatelessResetKey %v; want the default and none", c.MaxConnections, c.StatelessResetKey)
	}
	if qc.MaxIncomingUniStreams >= 0 || !qc.RequireStreamCreditRelease {
		t.Errorf("server must refuse uni streams and hold stream credit until the handler returns")
	}
	if cc := c.quicConfig(false); cc.MaxIncomingUniStreams != 1 || cc.RequireStreamCreditRelease {
		t.Errorf("client config %+v, want one incoming uni stream (go-away)", cc)
	}
	if qc := (Config{KeepAlivePeriod: -1}).withDefaults().quicConfig(false); qc.KeepAlivePeriod != 0 {
		t.Errorf("negative KeepAlivePeriod gave %v, want disabled", qc.KeepAlivePeriod)
	}
}

func TestConfigValidateReportsAll(t *testing.T) {
	c := Config{
		MaxIncomingStreams:     -1,
		MaxStreamReceiveWindow: 1024,
		MaxConnReceiveWindow:   512 + 64<<10,
		IdleTimeout:            time.Second,
		KeepAlivePeriod:        2 * time.Second,
		HandshakeTimeout:       time.Microsecond,
		MaxConnections:         -1,
	}.withDefaults()
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err %v, want ErrInvalidConfig", err)
	}
	for _, field := range []string{"MaxIncomingStreams", "MaxStreamReceiveWindow", "KeepAlivePeriod", "HandshakeTimeout", "MaxConnections"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not mention %s", err, field)
		}
	}
}
