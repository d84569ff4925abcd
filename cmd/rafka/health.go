package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// maxHealthBody bounds how much of a /healthz or /readyz answer is read; the
// broker's are a line or a list of offline partitions, and only one line of
// it is printed.
const maxHealthBody = 4 << 10

// maxHealthReason bounds the reason printed, so that a container runtime
// keeping the output of every check keeps little.
const maxHealthReason = 300

func newHealthCmd() *cobra.Command {
	var (
		admin   string
		ready   bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a broker's admin endpoint: exit 0 if it is alive (or ready, with --ready), 1 if not",
		Long: `Check a broker through its admin HTTP server: GET /healthz (the process
answers), or /readyz with --ready (serving, no partition offline, storage
not failing). Exits 0 and prints one line on stdout when the answer is 200;
exits 1 with a one-line reason on stderr otherwise, nothing listening and
no answer within --timeout included; 2 for bad flags.

It needs no shell or HTTP client in the image, so a container built FROM
scratch can use it as its health check:

  HEALTHCHECK CMD ["/rafka", "health", "--ready"]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return usagef("--timeout %v: must be positive", timeout)
			}
			if _, _, err := net.SplitHostPort(admin); err != nil {
				return usagef("--admin %q: want host:port (%v)", admin, err)
			}
			path := "/healthz"
			if ready {
				path = "/readyz"
			}
			line, err := checkHealth(cmd.Context(), "http://"+admin+path, timeout)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), line)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&admin, "admin", defaultAdminListen, "the broker's admin HTTP address (its --admin-listen)")
	f.BoolVar(&ready, "ready", false, "check /readyz (ready to serve) instead of /healthz (alive)")
	f.DurationVar(&timeout, "timeout", 2*time.Second, "how long connecting and the answer may take")
	return cmd
}

// checkHealth GETs url and returns the one line to print on success, or an
// error saying in one line why the broker is not healthy.
func checkHealth(ctx context.Context, url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", usagef("--admin: %v", err)
	}
	// No proxy from the environment: the admin port is local to the broker
	// and a proxy would check something else. One request, no keep-alive.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		var urlErr *neturl.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // drop `Get "url":`, the url comes first below
		}
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return "", fmt.Errorf("%s: nothing listening (is `rafka serve` running with this --admin-listen?)", url)
		case errors.Is(err, context.DeadlineExceeded):
			return "", fmt.Errorf("%s: no answer within %v", url, timeout)
		case errors.Is(err, context.Canceled):
			return "", err // interrupted: main reports it
		}
		return "", fmt.Errorf("%s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	if err != nil && resp.StatusCode == http.StatusOK {
		return "", fmt.Errorf("%s: reading the answer: %v", url, err)
	}
	reason := oneLine(string(body))
	if resp.StatusCode != http.StatusOK {
		if reason == "" {
			reason = "(no reason given)"
		}
		return "", fmt.Errorf("%s: %s: %s", url, resp.Status, reason)
	}
	return fmt.Sprintf("%s: %s", url, reason), nil
}

// oneLine joins the non-blank lines of s ("; " between them, a space after
// a line ending in a colon, which introduces a list) and bounds the result.
func oneLine(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
	}
	out := b.String()
	if len(out) > maxHealthReason {
		out = strings.ToValidUTF8(out[:maxHealthReason], "") + "..."
	}
	return out
}
