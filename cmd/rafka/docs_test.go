package main_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The snippets of README.md and docs/*.md are run as written, so that the
// documentation cannot drift from the code. Rules (also in
// docs/architecture.md, "Tested documentation"):
//
//   - Every ```sh (or bash, shell) block runs with bash -e -o pipefail, and
//     every ```go block is a complete program (package main) built and run
//     with `go run`. Other blocks (plain ``` diagrams, tables) are not code.
//   - They run in order, one document at a time, in a copy of the
//     repository (so `go build ./cmd/...` and relative paths work as from
//     the repository root), next to a broker started by the test in that
//     copy with its data in ./rafka-data, as `rafka serve` run there would.
//     The broker listens on free loopback ports: the snippets' text has
//     127.0.0.1:9092 and 127.0.0.1:9644 (the defaults) replaced by them,
//     and RAFKA_BROKERS names it for the rafka command. The rafka binary
//     built for these tests is on PATH.
//   - An HTML comment on the line before a block changes that:
//     <!-- snippet: server --> a long-running `rafka serve`: not run, the
//     test's own broker stands for it; <!-- snippet: slow --> run except
//     with -short; <!-- snippet: skip: REASON --> never run (for what
//     cannot run here, such as a command needing root), REASON required.
//   - Each block has a time limit; its whole process group is killed past
//     it.

// snippet is a fenced code block of a document.
type snippet struct {
	doc    string // path relative to the repository root
	line   int    // of the opening fence
	lang   string // sh or go
	marker string // "", "server", "slow" or "skip"
	reason string // for skip
	text   string
}

func (s snippet) String() string { return fmt.Sprintf("%s:%d", s.doc, s.line) }

var markerRE = regexp.MustCompile(`^<!--\s*snippet:\s*(\w+)(?::\s*(.*?))?\s*-->$`)

// parseSnippets returns the sh and go blocks of a markdown document.
func parseSnippets(doc string, md []byte) ([]snippet, error) {
	var (
		out     []snippet
		prev    string // the last non-blank line outside a block
		inBlock bool
		fence   string
		cur     snippet
		body    strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if inBlock {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, "`~") == "" {
				inBlock = false
				if cur.lang != "" {
					cur.text = body.String()
					out = append(out, cur)
				}
				prev = ""
				continue
			}
			body.WriteString(line)
			body.WriteByte('\n')
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inBlock = true
			fence = trimmed[:3]
			info := strings.Fields(strings.TrimLeft(trimmed, "`~"))
			cur = snippet{doc: doc, line: n}
			body.Reset()
			if len(info) > 0 {
				switch info[0] {
				case "sh", "bash", "shell":
					cur.lang = "sh"
				case "go":
					cur.lang = "go"
				}
			}
			if m := markerRE.FindStringSubmatch(prev); m != nil {
				cur.marker, cur.reason = m[1], m[2]
				switch {
				case cur.marker != "server" && cur.marker != "slow" && cur.marker != "skip":
					return nil, fmt.Errorf("%s: unknown snippet marker %q", cur, cur.marker)
				case cur.marker == "skip" && cur.reason == "":
					return nil, fmt.Errorf("%s: skip marker without a reason", cur)
				case cur.lang == "":
					return nil, fmt.Errorf("%s: snippet marker on a block that is neither sh nor go", cur)
				}
			} else if strings.HasPrefix(prev, "<!-- snippet") {
				return nil, fmt.Errorf("%s: malformed snippet marker %q", cur, prev)
			}
			continue
		}
		if trimmed != "" {
			prev = trimmed
		}
	}
	if inBlock {
		return nil, fmt.Errorf("%s:%d: unterminated code block", doc, cur.line)
	}
	return out, sc.Err()
}

func TestParseSnippets(t *testing.T) {
	md := "# T\n\n<!-- snippet: skip: needs root -->\n```sh\nsysctl -w x=1\n```\n\n" +
		"```\nnot code\n```\n<!-- snippet: server -->\n\n```sh\nrafka serve\n```\n" +
		"```go\npackage main\n```\n"
	got, err := parseSnippets("t.md", []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	want := []snippet{
		{doc: "t.md", line: 4, lang: "sh", marker: "skip", reason: "needs root", text: "sysctl -w x=1\n"},
		{doc: "t.md", line: 13, lang: "sh", marker: "server", text: "rafka serve\n"},
		{doc: "t.md", line: 16, lang: "go", text: "package main\n"},
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{
		"<!-- snippet: skip -->\n```sh\nx\n```\n",
		"<!-- snippet: later -->\n```sh\nx\n```\n",
		"<!-- snippet: slow -->\n```\nx\n```\n",
		"<!-- snippet:skip-->\n```sh\nx\n```\n",
		"```sh\nx\n",
	} {
		if _, err := parseSnippets("bad.md", []byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// copyRepo copies the repository's files to dst, leaving out .git and what
// builds and brokers leave behind (bin, rafka-data).
func copyRepo(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "rafka-data":
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, fi.Mode().Perm())
	})
}

// snippetEnv is the environment of the snippets: the test's rafka on PATH,
// RAFKA_BROKERS naming the test's broker, no other RAFKA_ variable, and
// -trimpath so that builds in the copy share the build cache across runs.
func snippetEnv(brokerAddr string) []string {
	var env []string
	goflags := "-trimpath"
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "RAFKA_"):
			continue
		case k == "PATH":
			kv = "PATH=" + filepath.Dir(rafkaBin) + string(os.PathListSeparator) + v
		case k == "GOFLAGS":
			goflags = strings.TrimSpace(v + " -trimpath")
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOFLAGS="+goflags, "RAFKA_BROKERS="+brokerAddr)
}

// snippetTimeout bounds one block, builds included.
const snippetTimeout = 5 * time.Minute

// runSnippet runs one block in dir and returns its combined output.
func runSnippet(t *testing.T, s snippet, dir string, env []string, subst *strings.Replacer) (string, error) {
	t.Helper()
	text := subst.Replace(s.text)
	var args []string
	switch s.lang {
	case "sh":
		args = []string{"bash", "-e", "-o", "pipefail", "-c", text}
	case "go":
		if !strings.Contains(text, "package main") {
			return "", fmt.Errorf("a go snippet must be a complete program (package main)")
		}
		rel := filepath.Join("snippets", fmt.Sprintf("%s_%d", strings.NewReplacer("/", "_", ".", "_").Replace(s.doc), s.line))
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, rel, "main.go"), []byte(text), 0o644); err != nil {
			return "", err
		}
		args = []string{"go", "run", "./" + rel}
	}
	ctx, cancel := context.WithTimeout(context.Background(), snippetTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	// Its own process group, so that a timeout ends what it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %v: %w", snippetTimeout, err)
	}
	// Whatever it left in the background goes with it.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return out.String(), err
}

// TestDocSnippets runs the sh and go blocks of README.md and docs/*.md as
// described at the top of this file.
func TestDocSnippets(t *testing.T) {
	root := repoRoot(t)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	work := t.TempDir()
	if err := copyRepo(root, work); err != nil {
		t.Fatal(err)
	}
	var notRun []string
	for _, path := range docs {
		rel, _ := filepath.Rel(root, path)
		md, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		snippets, err := parseSnippets(rel, md)
		if err != nil {
			t.Fatal(err)
		}
		var run []snippet
		for _, s := range snippets {
			switch {
			case s.marker == "skip":
				notRun = append(notRun, fmt.Sprintf("%s (%s)", s, s.reason))
			case s.marker == "server":
				if !strings.Contains(s.text, "rafka serve") && !strings.Contains(s.text, "cmd/rafka serve") {
					t.Errorf("%s: marked server but starts no `rafka serve`", s)
				}
			case s.marker == "slow" && testing.Short():
				notRun = append(notRun, fmt.Sprintf("%s (slow, -short)", s))
			default:
				run = append(run, s)
			}
		}
		if len(run) == 0 {
			continue
		}
		t.Run(rel, func(t *testing.T) {
			dataDir := filepath.Join(work, "rafka-data")
			srv := startServerIn(t, work, dataDir)
			defer func() {
				srv.stop()
				os.RemoveAll(dataDir)
			}()
			env := snippetEnv(srv.addr)
			subst := strings.NewReplacer("127.0.0.1:9092", srv.addr, "127.0.0.1:9644", srv.admin)
			for _, s := range run {
				out, err := runSnippet(t, s, work, env, subst)
				if err != nil {
					t.Fatalf("%s (%s block) failed: %v\n--- snippet\n%s--- output\n%s--- broker log\n%s",
						s, s.lang, err, s.text, out, srv.logs)
				}
				t.Logf("%s (%s) ok:\n%s", s, s.lang, out)
			}
		})
	}
	for _, s := range notRun {
		t.Logf("not run: %s", s)
	}
}
