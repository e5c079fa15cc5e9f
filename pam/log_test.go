package pam

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/internal/logging"
)

// testLogger returns a debug logger whose lines go to t.Log and to the
// returned buffer, stamped with a fixed time whose digits cannot look like
// a TOTP code.
func testLogger(t *testing.T) (*Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	l := NewLogger(&tlogWriter{t: t, buf: &buf}, LevelDebug)
	l.now = func() time.Time { return time.Time{} }
	return l, &buf
}

type tlogWriter struct {
	t   *testing.T
	buf *bytes.Buffer
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return w.buf.Write(p)
}

// The helper's lines are the bytes the agent's zap console logger writes for
// the same record, time aside: tests and operators' greps read them.
func TestLoggerMatchesZapConsole(t *testing.T) {
	cases := map[string]struct {
		msg    string
		zf     []zap.Field
		pf     []Field
		zlevel string
	}{
		"no fields":   {msg: "dev mode: Vault is reached over plain http"},
		"string":      {msg: "login refused", zf: []zap.Field{zap.String("user", `"al ice"`), zap.String("rhost", "198.51.100.7")}, pf: []Field{String("user", `"al ice"`), String("rhost", "198.51.100.7")}},
		"escapes":     {msg: "m", zf: []zap.Field{zap.String("k", "a\\b\"c\nd\re\tf\x00g\x1fh\x7fi<j>&k é \xff \u2028 😀")}, pf: []Field{String("k", "a\\b\"c\nd\re\tf\x00g\x1fh\x7fi<j>&k é \xff \u2028 😀")}},
		"key escape":  {msg: "m", zf: []zap.Field{zap.String("a\"b", "v")}, pf: []Field{String("a\"b", "v")}},
		"error":       {msg: "config error", zf: []zap.Field{zap.Error(fmt.Errorf("wrap: %w", errors.New("bad \"x\"")))}, pf: []Field{Err(fmt.Errorf("wrap: %w", errors.New("bad \"x\"")))}},
		"nil error":   {msg: "m", zf: []zap.Field{zap.String("a", "b"), zap.Error(nil)}, pf: []Field{String("a", "b"), Err(nil)}},
		"only nil":    {msg: "m", zf: []zap.Field{zap.Error(nil)}, pf: []Field{Err(nil)}},
		"request":     {msg: "vault request", zf: []zap.Field{zap.String("vault_addr", "https://v:8200"), zap.String("path", "ssh/verify"), zap.Duration("took", 1234567*time.Nanosecond), zap.Int("status", 200), zap.Bool("answered", true), zap.Bool("b", false), zap.Int("n", -3)}, pf: []Field{String("vault_addr", "https://v:8200"), String("path", "ssh/verify"), Duration("took", 1234567*time.Nanosecond), Int("status", 200), Bool("answered", true), Bool("b", false), Int("n", -3)}},
		"msg newline": {msg: "a\tb\nc"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, lv := range []struct {
				name string
				z    func(*zap.Logger, string, ...zap.Field)
				p    func(*Logger, string, ...Field)
			}{
				{"debug", (*zap.Logger).Debug, (*Logger).Debug},
				{"info", (*zap.Logger).Info, (*Logger).Info},
				{"warn", (*zap.Logger).Warn, (*Logger).Warn},
				{"error", (*zap.Logger).Error, (*Logger).Error},
			} {
				var zb, pb bytes.Buffer
				zl, flush, err := logging.New(logging.Options{Level: "trace", Format: "console", Output: &zb, Journal: logging.JournalOff})
				if err != nil {
					t.Fatal(err)
				}
				lv.z(zl, tc.msg, tc.zf...)
				flush()
				pl := NewLogger(&pb, LevelDebug)
				lv.p(pl, tc.msg, tc.pf...)
				// Times differ by the call's gap: compare from the first tab.
				z, p := zb.String(), pb.String()
				zt, zrest, _ := strings.Cut(z, "\t")
				pt, prest, _ := strings.Cut(p, "\t")
				if zrest != prest {
					t.Errorf("%s:\n zap  %q\n pam  %q", lv.name, z, p)
				}
				if _, err := time.Parse(time.RFC3339, pt); err != nil || len(pt) != len(zt) {
					t.Errorf("%s: time %q, zap writes %q", lv.name, pt, zt)
				}
			}
		})
	}
}

// -log-level takes the agent's names, and refuses others with its message.
func TestParseLevelMatchesLogging(t *testing.T) {
	for _, s := range []string{"", "trace", "debug", "info", "INFO", " warn ", "warning", "err", "error", "off", "none", "verbose", "fatal"} {
		zl, zerr := logging.ParseLevel(s)
		pl, perr := ParseLevel(s)
		if (zerr == nil) != (perr == nil) || (zerr != nil && zerr.Error() != perr.Error()) {
			t.Errorf("%q: error %v, logging says %v", s, perr, zerr)
			continue
		}
		if zerr != nil {
			continue
		}
		// Each level logs exactly what zap's does at that level.
		for _, probe := range []struct {
			lvl  Level
			name string
		}{{lvl: LevelDebug, name: "debug"}, {lvl: LevelInfo, name: "info"}, {lvl: LevelWarn, name: "warn"}, {lvl: LevelError, name: "error"}} {
			var zb, pb bytes.Buffer
			z, flush, _ := logging.New(logging.Options{Level: s, Format: "console", Output: &zb, Journal: logging.JournalOff})
			p := NewLogger(&pb, pl)
			switch probe.lvl {
			case LevelDebug:
				z.Debug("x")
				p.Debug("x")
			case LevelInfo:
				z.Info("x")
				p.Info("x")
			case LevelWarn:
				z.Warn("x")
				p.Warn("x")
			case LevelError:
				z.Error("x")
				p.Error("x")
			}
			flush()
			if (zb.Len() > 0) != (pb.Len() > 0) {
				t.Errorf("level %q (%v vs zap %v): %s logged %q, zap %q", s, pl, zl, probe.name, pb.String(), zb.String())
			}
		}
	}
}

// A nil *Logger logs nothing and does not panic (doctor's default).
func TestNilLogger(t *testing.T) {
	var l *Logger
	l.Debug("x", String("a", "b"))
	l.Error("x", Err(errors.New("e")))
}
