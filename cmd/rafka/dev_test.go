package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDevPlanArgs checks the command line of each broker of a three-broker
// cluster on the default ports: broker 1 forms the cluster, the others join
// it, and the extra arguments come last.
func TestDevPlanArgs(t *testing.T) {
	p := devPlan{Brokers: 3, Dir: "/d", BasePort: 9092, AdminBasePort: 9644, ShutdownTimeout: 10 * time.Second,
		Extra: []string{"--default-fsync", "always"}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	want := func(i int, listen, admin, join string) []string {
		n := []string{"b1", "b2", "b3"}[i-1]
		args := []string{"serve", "--broker-id", n, "--data-dir", "/d/" + n,
			"--listen", listen, "--admin-listen", admin,
			"--tls-ca", "/d/certs/ca.pem", "--tls-cert", "/d/certs/" + n + "/cert.pem", "--tls-key", "/d/certs/" + n + "/key.pem",
			"--ready-file", "/d/" + n + "/ready.json", "--shutdown-timeout", "10s"}
		if join != "" {
			args = append(args, "--join", join)
		}
		return append(args, "--default-fsync", "always")
	}
	for _, tc := range []struct {
		i                   int
		join                string
		listen, admin, want string
	}{
		{1, "", "127.0.0.1:9092", "127.0.0.1:9644", ""},
		{2, "127.0.0.1:9092", "127.0.0.1:9192", "127.0.0.1:9744", "127.0.0.1:9092"},
		{3, "127.0.0.1:9092", "127.0.0.1:9292", "127.0.0.1:9844", "127.0.0.1:9092"},
	} {
		got := p.Args(tc.i, tc.join)
		if w := want(tc.i, tc.listen, tc.admin, tc.want); !slices.Equal(got, w) {
			t.Errorf("broker %d:\n got %q\nwant %q", tc.i, got, w)
		}
	}
	if got := filepath.ToSlash(p.ClientCertDir()); got != "/d/certs/client" {
		t.Errorf("client certificate in %s", got)
	}

	p.BasePort, p.AdminBasePort = 0, 0
	for i := 1; i <= 3; i++ {
		if p.Listen(i) != "127.0.0.1:0" || p.AdminListen(i) != "127.0.0.1:0" {
			t.Errorf("free ports: broker %d on %s, admin %s", i, p.Listen(i), p.AdminListen(i))
		}
	}
}

func TestDevPlanValidate(t *testing.T) {
	ok := devPlan{Brokers: 3, Dir: "d", BasePort: 9092, AdminBasePort: 9644, ShutdownTimeout: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*devPlan)
		want []string // substrings of the error; none: valid
	}{
		{"defaults", func(*devPlan) {}, nil},
		{"one broker", func(p *devPlan) { p.Brokers = 1 }, nil},
		{"nine brokers", func(p *devPlan) { p.Brokers = 9 }, nil},
		{"free ports", func(p *devPlan) { p.BasePort, p.AdminBasePort = 0, 0 }, nil},
		{"extra flags", func(p *devPlan) { p.Extra = []string{"--default-fsync=always", "--log-level", "debug"} }, nil},
		{"no brokers", func(p *devPlan) { p.Brokers = 0 }, []string{"--brokers 0: 1 to 9"}},
		{"ten brokers", func(p *devPlan) { p.Brokers = 10 }, []string{"--brokers 10"}},
		{"ports past 65535", func(p *devPlan) { p.BasePort = 65400 }, []string{"--base-port 65400: broker 3 would get port 65600"}},
		{"negative admin port", func(p *devPlan) { p.AdminBasePort = -1 }, []string{"--admin-base-port -1"}},
		{"same ports", func(p *devPlan) { p.AdminBasePort = 9092 }, []string{"both 9092"}},
		{"shutdown timeout", func(p *devPlan) { p.ShutdownTimeout = 0 }, []string{"--shutdown-timeout 0s"}},
		{"managed flags", func(p *devPlan) { p.Extra = []string{"--listen", "x", "--join=y", "--log-level", "debug"} },
			[]string{"--listen after --", "--join after --", "see --base-port"}},
		{"every problem", func(p *devPlan) { p.Brokers, p.ShutdownTimeout = 20, -1 }, []string{"--brokers 20", "--shutdown-timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			err := p.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestPrefixWriter checks that output written in arbitrary pieces comes out
// as whole prefixed lines, and that a line without end is written at flush.
func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	lines := &lockedLines{w: &out}
	w := &prefixWriter{lines: lines, prefix: "[b1] "}
	for _, piece := range []string{"sta", "rted\nserv", "ing\n\n", "bye"} {
		if n, err := w.Write([]byte(piece)); n != len(piece) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if got, want := out.String(), "[b1] started\n[b1] serving\n[b1] \n"; got != want {
		t.Fatalf("before flush: %q, want %q", got, want)
	}
	w.flush()
	if got, want := out.String(), "[b1] started\n[b1] serving\n[b1] \n[b1] bye\n"; got != want {
		t.Fatalf("after flush: %q, want %q", got, want)
	}

	// A line growing past the bound without an end is written once it
	// passes it; its end follows as a line of its own.
	out.Reset()
	long := strings.Repeat("x", maxDevLogLine+10)
	w.Write([]byte(long))
	w.Write([]byte("\n"))
	w.flush()
	got := out.String()
	if strings.Count(got, "[b1] ") != 2 || strings.Count(got, "x") != len(long) {
		t.Fatalf("long line written as %d pieces, %d bytes", strings.Count(got, "[b1] "), len(got))
	}
}
