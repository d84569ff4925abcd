package client

import (
	"fmt"
	"time"
)

// ConsumerOption configures a Consumer. NewConsumer validates the result once
// and reports every problem together.
type ConsumerOption func(*consumerConfig)

type consumerConfig struct {
	creditBytes    int64
	maxPollRecords int
	retries        int
	backoffBase    time.Duration
	backoffMax     time.Duration
}

func defaultConsumerConfig() consumerConfig {
	return consumerConfig{
		creditBytes:    4 << 20,
		maxPollRecords: 500,
		retries:        10,
		backoffBase:    100 * time.Millisecond,
		backoffMax:     5 * time.Second,
	}
}

// WithCreditBytes sets the flow-control window of each subscribe stream
// (default 4 MiB): a broker pushes at most about this many bytes (plus one
// batch) that the application has not polled yet. Credit is granted again
// when less than half the window is outstanding. Larger windows keep more
// data in flight on long paths, at the cost of memory.
func WithCreditBytes(n int64) ConsumerOption {
	return func(c *consumerConfig) { c.creditBytes = n }
}

// WithMaxPollRecords bounds the records one Poll returns (default 500).
func WithMaxPollRecords(n int) ConsumerOption {
	return func(c *consumerConfig) { c.maxPollRecords = n }
}

// WithResubscribeRetries sets how many consecutive times a partition whose
// stream broke or whose leader moved is subscribed again (default 10) before
// Poll reports the error and the partition is dropped.
func WithResubscribeRetries(n int) ConsumerOption {
	return func(c *consumerConfig) { c.retries = n }
}

// WithResubscribeBackoff sets the first and the largest delay before
// subscribing a partition again (default 100ms and 5s), doubled per
// consecutive failure, with jitter.
func WithResubscribeBackoff(base, maxDelay time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.backoffBase, c.backoffMax = base, maxDelay }
}

func (c *consumerConfig) validate() error {
	var errs []error
	if c.creditBytes < 2 {
		errs = append(errs, fmt.Errorf("credit bytes %d must be >= 2", c.creditBytes))
	}
	if c.maxPollRecords < 1 {
		errs = append(errs, fmt.Errorf("max poll records %d must be >= 1", c.maxPollRecords))
	}
	if c.retries < 0 {
		errs = append(errs, fmt.Errorf("resubscribe retries %d must be >= 0", c.retries))
	}
	errs = append(errs, validateBackoff(c.backoffBase, c.backoffMax)...)
	return joinOptionErrors(errs)
}
