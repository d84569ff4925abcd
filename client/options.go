package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rafka/rafka/wire"
)

// Option configures a Client. Options are applied in order; New validates the
// result once and reports every problem together.
type Option func(*config)

type config struct {
	brokers        []string
	tls            *tls.Config
	caFile         string
	insecure       bool
	dialTimeout    time.Duration
	requestTimeout time.Duration
	logger         *slog.Logger
	maxFrameBytes  int
	retries        int
	backoffBase    time.Duration
	backoffMax     time.Duration
}

func defaultConfig() config {
	return config{
		brokers:        []string{"127.0.0.1:9092"},
		dialTimeout:    10 * time.Second,
		requestTimeout: 30 * time.Second,
		maxFrameBytes:  wire.DefaultMaxFrameSize,
		retries:        5,
		backoffBase:    100 * time.Millisecond,
		backoffMax:     5 * time.Second,
	}
}

// WithBrokers sets the bootstrap brokers (host:port), overriding the default
// "127.0.0.1:9092". The client learns the rest of the cluster from metadata.
func WithBrokers(addrs ...string) Option {
	return func(c *config) { c.brokers = append([]string(nil), addrs...) }
}

// WithTLSConfig sets the TLS configuration used to dial brokers, overriding
// the default built from WithCAFile / WithInsecureSkipVerify (or the system
// roots). The ALPN protocol is added when NextProtos is empty. It cannot be
// combined with WithCAFile or WithInsecureSkipVerify.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) { c.tls = cfg }
}

// WithCAFile trusts the PEM certificates in path instead of the system roots
// (the default). A development broker's self-signed certificate is such a
// file.
func WithCAFile(path string) Option {
	return func(c *config) { c.caFile = path }
}

// WithInsecureSkipVerify disables verification of broker certificates
// (default: verified). Only for tests and development.
func WithInsecureSkipVerify() Option {
	return func(c *config) { c.insecure = true }
}

// WithDialTimeout bounds connecting to one broker, handshake included
// (default 10s). A shorter context deadline wins. A dial that gets no
// answer fails with an error matching context.DeadlineExceeded.
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) { c.dialTimeout = d }
}

// WithControlTimeout bounds one control request (metadata, admin, list
// offsets) when the caller's context has no earlier deadline (default 30s).
// It also bounds New's whole bootstrap, dials and retries included. A
// request that gets no answer within it marks its connection suspect: the
// next request to that broker dials a new connection.
func WithControlTimeout(d time.Duration) Option {
	return func(c *config) { c.requestTimeout = d }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithMaxFrameBytes bounds the size of a frame read from a broker (default
// wire.DefaultMaxFrameSize). Larger frames end their stream with an error.
func WithMaxFrameBytes(n int) Option {
	return func(c *config) { c.maxFrameBytes = n }
}

// WithControlRetries sets how many times a control request that failed with a
// retriable error is sent again (default 5), with exponential backoff and
// jitter between WithControlBackoff's bounds.
func WithControlRetries(n int) Option {
	return func(c *config) { c.retries = n }
}

// WithControlBackoff sets the first and the largest delay between control
// request retries (default 100ms and 5s).
func WithControlBackoff(base, maxDelay time.Duration) Option {
	return func(c *config) { c.backoffBase, c.backoffMax = base, maxDelay }
}

func (c *config) validate() error {
	var errs []error
	if len(c.brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	for _, b := range c.brokers {
		if b == "" {
			errs = append(errs, errors.New("empty broker address"))
		}
	}
	if c.tls != nil && (c.caFile != "" || c.insecure) {
		errs = append(errs, errors.New("WithTLSConfig excludes WithCAFile and WithInsecureSkipVerify"))
	}
	if c.dialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("dial timeout %v must be positive", c.dialTimeout))
	}
	if c.requestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("control timeout %v must be positive", c.requestTimeout))
	}
	if c.maxFrameBytes < wire.FrameFixedSize+wire.BatchHeaderSize {
		errs = append(errs, fmt.Errorf("max frame bytes %d too small", c.maxFrameBytes))
	}
	if c.retries < 0 {
		errs = append(errs, fmt.Errorf("control retries %d must be >= 0", c.retries))
	}
	errs = append(errs, validateBackoff(c.backoffBase, c.backoffMax)...)
	return joinOptionErrors(errs)
}

func validateBackoff(base, maxDelay time.Duration) []error {
	if base <= 0 || maxDelay < base {
		return []error{fmt.Errorf("backoff base %v must be positive and at most max %v", base, maxDelay)}
	}
	return nil
}

// joinOptionErrors wraps every problem found by a validation pass into one
// error matching ErrInvalidOption.
func joinOptionErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(errs...))
}
