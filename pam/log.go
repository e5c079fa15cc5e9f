package pam

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Logger writes the helper's console lines: the same bytes zap's console
// encoder writes (time, LEVEL, message, then the fields as spaced JSON),
// without zap. The helper runs once per login under pam_exec, and zap brings
// net/http, compress/* and a dozen packages' inits into every login. A nil
// *Logger logs nothing.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	min Level
	now func() time.Time
}

// Level orders the logger's levels; LevelOff enables nothing.
type Level int

// The levels, in zap's order (trace is debug: there is nothing finer).
const (
	LevelDebug Level = iota - 1
	LevelInfo
	LevelWarn
	LevelError
	LevelOff
)

// ParseLevel maps a -log-level name to a Level, with the same names and the
// same error as the agent's logging.ParseLevel.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return LevelInfo, nil
	case "trace", "debug":
		return LevelDebug, nil
	case "warn", "warning":
		return LevelWarn, nil
	case "err", "error":
		return LevelError, nil
	case "off", "none":
		return LevelOff, nil
	}
	return 0, fmt.Errorf("log level %q: want trace, debug, info, warn, error or off", s)
}

// NewLogger returns a logger writing lines at min and above to w.
func NewLogger(w io.Writer, min Level) *Logger {
	return &Logger{w: w, min: min, now: time.Now}
}

// Field is one key and its value, already encoded as JSON.
type Field struct {
	key  string
	json string
	skip bool
}

// String is a string field.
func String(key, v string) Field { return Field{key: key, json: quoteJSON(v)} }

// Int is an integer field.
func Int(key string, v int) Field { return Field{key: key, json: strconv.Itoa(v)} }

// Bool is a boolean field.
func Bool(key string, v bool) Field { return Field{key: key, json: strconv.FormatBool(v)} }

// Duration is a duration field, written as its String form (zap's
// StringDurationEncoder).
func Duration(key string, d time.Duration) Field { return String(key, d.String()) }

// Err is the "error" field; a nil error adds nothing, as with zap.Error.
func Err(err error) Field {
	if err == nil {
		return Field{skip: true}
	}
	return String("error", err.Error())
}

// Debug logs at debug level.
func (l *Logger) Debug(msg string, f ...Field) { l.log(LevelDebug, "DEBUG", msg, f) }

// Info logs at info level.
func (l *Logger) Info(msg string, f ...Field) { l.log(LevelInfo, "INFO", msg, f) }

// Warn logs at warn level.
func (l *Logger) Warn(msg string, f ...Field) { l.log(LevelWarn, "WARN", msg, f) }

// Error logs at error level.
func (l *Logger) Error(msg string, f ...Field) { l.log(LevelError, "ERROR", msg, f) }

func (l *Logger) log(lvl Level, name, msg string, fields []Field) {
	if l == nil || lvl < l.min {
		return
	}
	b := make([]byte, 0, 256)
	b = l.now().AppendFormat(b, time.RFC3339)
	b = append(b, '\t')
	b = append(b, name...)
	b = append(b, '\t')
	b = append(b, msg...)
	first := true
	for _, f := range fields {
		if f.skip {
			continue
		}
		if first {
			b = append(b, "\t{"...)
			first = false
		} else {
			b = append(b, ", "...)
		}
		b = append(b, quoteJSON(f.key)...)
		b = append(b, ": "...)
		b = append(b, f.json...)
	}
	if !first {
		b = append(b, '}')
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}

// quoteJSON quotes s as zap's JSON encoder does: \\ \" \n \r \t escaped,
// other control bytes as \u00xx, invalid UTF-8 as \ufffd, nothing else.
func quoteJSON(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c >= 0x20 && c != '\\' && c != '"':
				b = append(b, c)
			case c == '\\' || c == '"':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(append(b, '"'))
}
