package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

type sent struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

func recorder(into *[]sent) func(string, journal.Priority, map[string]string) error {
	return func(m string, p journal.Priority, v map[string]string) error {
		*into = append(*into, sent{m, p, v})
		return nil
	}
}

func TestParseLevel(t *testing.T) {
	tests := map[string]struct {
		in   string
		want zapcore.Level
		err  bool
	}{
		"empty is info": {"", zapcore.InfoLevel, false},
		"trace":         {"trace", zapcore.DebugLevel, false},
		"debug":         {"DEBUG", zapcore.DebugLevel, false},
		"warn":          {"warn", zapcore.WarnLevel, false},
		"error":         {"error", zapcore.ErrorLevel, false},
		"off":           {"off", Off, false},
		"bogus":         {"loud", 0, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseLevel(tc.in)
			if (err != nil) != tc.err || (!tc.err && got != tc.want) {
				t.Fatalf("ParseLevel(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func TestJSONWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	log, done, err := New(Options{Output: &buf, Journal: JournalOff})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("login", zap.String("user", "alice"))
	log.Debug("hidden at info")
	done()
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if rec["msg"] != "login" || rec["user"] != "alice" || rec["level"] != "info" {
		t.Fatalf("record = %v", rec)
	}
}

func TestConsoleFormat(t *testing.T) {
	var buf bytes.Buffer
	log, done, err := New(Options{Output: &buf, Format: "standard", Journal: JournalOff})
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("slow", zap.Int("ms", 5))
	done()
	if s := buf.String(); !strings.Contains(s, "WARN\tslow") || !strings.Contains(s, `{"ms": 5}`) {
		t.Fatalf("console line = %q", s)
	}
}

func TestOffLogsNothing(t *testing.T) {
	var buf bytes.Buffer
	log, done, err := New(Options{Output: &buf, Level: "off", Journal: JournalOff})
	if err != nil {
		t.Fatal(err)
	}
	log.Error("nothing")
	done()
	if buf.Len() != 0 {
		t.Fatalf("wrote %q", buf.String())
	}
}

func TestUnderSystemdUsesJournalFields(t *testing.T) {
	var buf bytes.Buffer
	var got []sent
	log, done, err := New(Options{
		Output: &buf, Identifier: "latchkey-agent",
		underJournal: func() bool { return true },
		sendJournal:  recorder(&got),
	})
	if err != nil {
		t.Fatal(err)
	}
	log.Named("auth").With(zap.String("role", "web")).Error("login failed",
		zap.Error(errors.New("403")), zap.Int("attempt", 3), zap.String("vault-addr", "https://v"))
	done()
	if buf.Len() != 0 {
		t.Errorf("also wrote to stderr under systemd: %q", buf.String())
	}
	if len(got) != 1 {
		t.Fatalf("sent %d records", len(got))
	}
	r := got[0]
	want := map[string]string{"ROLE": "web", "ERROR": "403", "ATTEMPT": "3", "VAULT_ADDR": "https://v", "SYSLOG_IDENTIFIER": "latchkey-agent", "LOGGER": "auth"}
	for k, v := range want {
		if r.vars[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, r.vars[k], v, r.vars)
		}
	}
	if r.msg != "login failed" || r.pri != journal.PriErr {
		t.Errorf("msg/priority = %q/%d", r.msg, r.pri)
	}
}

func TestJournalAlsoKeepsStderr(t *testing.T) {
	var buf bytes.Buffer
	var got []sent
	log, done, err := New(Options{Output: &buf, Journal: JournalAlso, sendJournal: recorder(&got), underJournal: func() bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("audit")
	done()
	if len(got) != 1 || buf.Len() == 0 {
		t.Fatalf("journal records %d, stderr %q", len(got), buf.String())
	}
}

func TestLogFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.log")
	log, done, err := New(Options{Output: &bytes.Buffer{}, File: p, Journal: JournalOff})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("to file")
	done()
	b, err := os.ReadFile(p)
	if err != nil || !strings.Contains(string(b), `"msg":"to file"`) {
		t.Fatalf("file = %q, %v", b, err)
	}
}

// Reopen opens File anew (after a rename) and keeps the file open before
// when the path cannot be opened; without File it does nothing.
func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.log")
	var reopen func() error
	log, done, err := New(Options{Output: &bytes.Buffer{}, File: p, Journal: JournalOff, Reopen: &reopen})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("one")
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	if err := reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("two")
	if err := os.Rename(p, p+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), p); err != nil {
		t.Fatal(err)
	}
	if err := reopen(); err == nil || !strings.Contains(err.Error(), "open log file "+p) {
		t.Errorf("reopen onto a symlink: %v, want an error naming the file", err)
	}
	log.Info("three")
	done()
	for f, want := range map[string][]string{p + ".1": {"one"}, p + ".2": {"two", "three"}} {
		b, _ := os.ReadFile(f)
		if n := strings.Count(string(b), "\n"); n != len(want) {
			t.Errorf("%s holds %d lines, want %v: %q", f, n, want, b)
		}
		for _, w := range want {
			if !strings.Contains(string(b), `"msg":"`+w+`"`) {
				t.Errorf("%s lacks %q: %q", f, w, b)
			}
		}
	}

	var none func() error
	if _, done, err := New(Options{Output: &bytes.Buffer{}, Journal: JournalOff, Reopen: &none}); err != nil || none == nil || none() != nil {
		t.Errorf("without File: New %v, Reopen set %t", err, none != nil)
	} else {
		done()
	}
}

func TestJournalFieldName(t *testing.T) {
	tests := map[string]string{"user": "USER", "vault-addr": "VAULT_ADDR", "_secret": "SECRET", "1st": "F_1ST", "request.id": "REQUEST_ID"}
	for in, want := range tests {
		if got := JournalFieldName(in); got != want {
			t.Errorf("JournalFieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// log_file: created 0640 whatever the umask; an existing file keeps its
// mode; a symlink at the path is refused. The umask is process-wide: this
// test does not run in parallel.
func TestLogFileMode(t *testing.T) {
	dir := t.TempDir()
	newFile := filepath.Join(dir, "new.log")
	old := syscall.Umask(0o077)
	_, done, err := New(Options{Output: &bytes.Buffer{}, File: newFile, Journal: JournalOff})
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if perm, err := permOf(newFile); err != nil || perm != 0o640 {
		t.Errorf("new log file under umask 077: %#o, %v; want mode 0640", perm, err)
	}

	existing := filepath.Join(dir, "existing.log")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, done, err = New(Options{Output: &bytes.Buffer{}, File: existing, Journal: JournalOff})
	if err != nil {
		t.Fatal(err)
	}
	done()
	if perm, err := permOf(existing); err != nil || perm != 0o600 {
		t.Errorf("existing 0600 log file: %#o, %v; want its mode kept", perm, err)
	}

	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(existing, link); err != nil {
		t.Fatal(err)
	}
	if _, done, err := New(Options{Output: &bytes.Buffer{}, File: link, Journal: JournalOff}); err == nil {
		done()
		t.Error("a symlink at log_file was opened")
	}
}

func permOf(p string) (os.FileMode, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}

// openPTY returns both ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// The default format: console lines for a person at a terminal, JSON for
// anything else (a pipe, a file).
func TestAutoFormatFollowsTheTerminal(t *testing.T) {
	_, tty := openPTY(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := map[string]struct {
		out     *os.File
		console bool
	}{
		"terminal": {tty, true},
		"file":     {f, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			enc, err := encoderFor("", tc.out)
			if err != nil {
				t.Fatal(err)
			}
			buf, err := enc.EncodeEntry(zapcore.Entry{Level: zapcore.InfoLevel, Message: "hello"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			line := buf.String()
			if isJSON := json.Valid(bytes.TrimSpace([]byte(line))); isJSON == tc.console {
				t.Errorf("line %q: console %v, want %v", line, !isJSON, tc.console)
			}
		})
	}
}
