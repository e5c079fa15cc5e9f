package logging

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap/zapcore"
)

// journalCore writes each record to journald with its zap fields as native
// journal fields (user=alice becomes USER=alice), so `journalctl USER=alice`
// and structured collectors can select on them.
type journalCore struct {
	zapcore.LevelEnabler
	identifier string
	fields     []zapcore.Field
	send       func(string, journal.Priority, map[string]string) error
}

// NewJournalCore returns a zapcore.Core that sends records with send
// (journal.Send in production) at the priority matching their level.
func NewJournalCore(enab zapcore.LevelEnabler, identifier string, send func(string, journal.Priority, map[string]string) error) zapcore.Core {
	return &journalCore{LevelEnabler: enab, identifier: identifier, send: send}
}

func (c *journalCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.fields = append(append([]zapcore.Field(nil), c.fields...), fields...)
	return &clone
}

func (c *journalCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *journalCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	vars := make(map[string]string, len(enc.Fields)+2)
	for k, v := range enc.Fields {
		vars[JournalFieldName(k)] = journalValue(v)
	}
	if c.identifier != "" {
		vars["SYSLOG_IDENTIFIER"] = c.identifier
	}
	if e.LoggerName != "" {
		vars["LOGGER"] = e.LoggerName
	}
	return c.send(e.Message, priority(e.Level), vars)
}

func (c *journalCore) Sync() error { return nil }

func priority(l zapcore.Level) journal.Priority {
	switch {
	case l <= zapcore.DebugLevel:
		return journal.PriDebug
	case l == zapcore.InfoLevel:
		return journal.PriInfo
	case l == zapcore.WarnLevel:
		return journal.PriWarning
	case l == zapcore.ErrorLevel:
		return journal.PriErr
	default:
		return journal.PriCrit
	}
}

// JournalFieldName turns a zap key into a valid journal field name:
// upper case, [A-Z0-9_] only, not starting with "_" or a digit (journald
// reserves leading underscores for trusted fields).
func JournalFieldName(k string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(k) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "F_" + s
	}
	return s
}

func journalValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case fmt.Stringer:
		return x.String()
	case map[string]any, []any:
		b, err := json.Marshal(x)
		if err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}
