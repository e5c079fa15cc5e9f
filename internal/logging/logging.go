// Package logging builds the *zap.Logger both binaries pass around: human
// console lines on a terminal, JSON lines otherwise, and native journald
// fields when the process runs under systemd (or is asked to).
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/latchkey/latchkey/internal/appendfile"
)

// Journal says when records go to the systemd journal.
type Journal int

const (
	// JournalAuto sends to the journal instead of stderr when stderr is
	// connected to it (systemd's JOURNAL_STREAM), else not at all.
	JournalAuto Journal = iota
	// JournalOff never uses the journal.
	JournalOff
	// JournalAlso sends to the journal (when its socket exists) in addition
	// to the other outputs: for audit records that must survive a caller
	// that discards stderr, such as pam_exec without log=.
	JournalAlso
)

// Off is the level that enables nothing ("off").
const Off = zapcore.FatalLevel + 1

// Options configure New.
type Options struct {
	// Level is trace, debug, info (the default), warn, error or off. Trace is
	// debug: zap has no finer level.
	Level string
	// Format is auto (the default: console on a terminal, JSON otherwise),
	// console (also "standard", Vault's name for it) or json.
	Format string
	// Output is where console/JSON lines go (default os.Stderr).
	Output io.Writer
	// File, when set, also appends JSON lines to this file (created 0640).
	File string
	// Atomic, when set, receives the logger's level, so that the caller can
	// change it later (a reload) with Atomic.SetLevel.
	Atomic *zap.AtomicLevel
	// Reopen, when set, receives a function that opens File again at its
	// path (after logrotate renamed it away), sends every later line there
	// and closes the previous descriptor. It returns nil (also without
	// File), or the open's error naming the file: lines then go on to the
	// file open before.
	Reopen *func() error
	// Journal chooses journald use; Identifier is its SYSLOG_IDENTIFIER.
	Journal    Journal
	Identifier string

	// sendJournal replaces journal.Send in tests.
	sendJournal func(string, journal.Priority, map[string]string) error
	// underJournal replaces the JOURNAL_STREAM check in tests.
	underJournal func() bool
}

// ParseLevel maps a level name to zap's levels. It returns an error naming
// the valid names for anything else.
func ParseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return zapcore.InfoLevel, nil
	case "trace", "debug":
		return zapcore.DebugLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "err", "error":
		return zapcore.ErrorLevel, nil
	case "off", "none":
		return Off, nil
	}
	return 0, fmt.Errorf("log level %q: want trace, debug, info, warn, error or off", s)
}

// New returns a logger for o, and a function that flushes it and closes the
// log file (call it before exiting).
func New(o Options) (*zap.Logger, func(), error) {
	lvl, err := ParseLevel(o.Level)
	if err != nil {
		return nil, nil, err
	}
	level := zap.NewAtomicLevelAt(lvl)
	if o.Atomic != nil {
		*o.Atomic = level
	}
	out := o.Output
	if out == nil {
		out = os.Stderr
	}
	underJournal := o.underJournal
	if underJournal == nil {
		underJournal = func() bool { ok, _ := journal.StderrIsJournalStream(); return ok }
	}
	send := o.sendJournal
	if send == nil {
		send = journal.Send
	}

	var cores []zapcore.Core
	closers := []func(){}
	useJournal := o.Journal == JournalAlso && (o.sendJournal != nil || journal.Enabled())
	replaceStderr := o.Journal == JournalAuto && underJournal()
	if replaceStderr {
		useJournal = true
	}
	if useJournal {
		cores = append(cores, NewJournalCore(level, o.Identifier, send))
	}
	if !replaceStderr {
		enc, err := encoderFor(o.Format, out)
		if err != nil {
			return nil, nil, err
		}
		cores = append(cores, zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), level))
	}
	if o.File != "" {
		// 0640 when created, whatever the umask; an existing file keeps its
		// mode; a symlink is refused.
		f, err := openLogFile(o.File)
		if err != nil {
			return nil, nil, err
		}
		lf := &logFile{path: o.File, f: f}
		closers = append(closers, lf.close)
		cores = append(cores, zapcore.NewCore(zapcore.NewJSONEncoder(jsonConfig()), lf, level))
		if o.Reopen != nil {
			*o.Reopen = lf.reopen
		}
	} else if o.Reopen != nil {
		*o.Reopen = func() error { return nil }
	}
	logger := zap.New(zapcore.NewTee(cores...), zap.ErrorOutput(zapcore.AddSync(out)))
	done := func() {
		_ = logger.Sync()
		for _, c := range closers {
			c()
		}
	}
	return logger, done, nil
}

// openLogFile opens path for appending: O_APPEND, so that after a
// copytruncate the next line lands at the start, not after a hole; 0640
// when created, whatever the umask; an existing file keeps its mode; a
// symlink is refused. The error names the file.
func openLogFile(path string) (*os.File, error) {
	f, err := appendfile.Open(path, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file %s: %w", path, err)
	}
	return f, nil
}

// logFile is the log file's descriptor, which reopen replaces while lines
// are written.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func (l *logFile) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Sync()
}

// reopen opens l.path anew and writes there from now on, closing the old
// descriptor; it returns nil, or the open's error (the old descriptor is
// kept). Closing the old one cannot lose a line (writes are not buffered),
// so its error is not reported.
func (l *logFile) reopen() error {
	f, err := openLogFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	old.Close()
	return nil
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Close()
}

func encoderFor(format string, out io.Writer) (zapcore.Encoder, error) {
	switch strings.ToLower(format) {
	case "", "auto":
		if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return zapcore.NewConsoleEncoder(consoleConfig()), nil
		}
		return zapcore.NewJSONEncoder(jsonConfig()), nil
	case "console", "standard", "text":
		return zapcore.NewConsoleEncoder(consoleConfig()), nil
	case "json":
		return zapcore.NewJSONEncoder(jsonConfig()), nil
	}
	return nil, fmt.Errorf("log format %q: want auto, console (standard) or json", format)
}

func jsonConfig() zapcore.EncoderConfig {
	c := zap.NewProductionEncoderConfig()
	c.TimeKey = "time"
	c.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	c.EncodeDuration = zapcore.StringDurationEncoder
	return c
}

func consoleConfig() zapcore.EncoderConfig {
	c := zap.NewDevelopmentEncoderConfig()
	c.EncodeTime = zapcore.RFC3339TimeEncoder
	c.EncodeDuration = zapcore.StringDurationEncoder
	c.CallerKey = ""
	return c
}
