// Package sink writes the agent's token to its auto_auth sinks: files
// written atomically with an explicit mode and owner, only when the token
// changes, optionally response-wrapped, and retried with backoff when a
// write fails (a sink never stops the agent).
package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/atomicfile"
)

// File is one `sink "file"`.
type File struct {
	cfg      config.Sink
	uid, gid int

	// written is the generation of the token last written (0: none); it is
	// kept across reloads for an unchanged sink.
	mu      sync.Mutex
	written uint64
}

// NewFile checks a sink and resolves its owner and group (names or
// numbers). It returns an error naming the sink's file and line when the
// owner or group does not exist.
func NewFile(s config.Sink) (*File, error) {
	f := &File{cfg: s, uid: -1, gid: -1}
	if s.Mode == 0 {
		f.cfg.Mode = config.DefaultSinkMode
	}
	var err error
	if s.Owner != "" {
		if f.uid, err = lookupID(s.Owner, true); err != nil {
			return nil, fmt.Errorf("%s:%d: sink %s: owner: %w", s.Range.Filename, s.Range.Start.Line, s.Path, err)
		}
	}
	if s.Group != "" {
		if f.gid, err = lookupID(s.Group, false); err != nil {
			return nil, fmt.Errorf("%s:%d: sink %s: group: %w", s.Range.Filename, s.Range.Start.Line, s.Path, err)
		}
	}
	return f, nil
}

func lookupID(name string, isUser bool) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	if isUser {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(u.Uid)
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

// Path is the file the sink writes.
func (f *File) Path() string { return f.cfg.Path }

// Write writes tok to the file unless this sink already holds it. A wrapped
// login is written as its wrap info (JSON); with the sink's wrap_ttl the
// token is response-wrapped first (sys/wrapping/wrap) and the wrap info
// written, as Vault Agent does. It returns nil when the file holds tok.
func (f *File) Write(ctx context.Context, tokens *auth.Tokens, tok auth.Token) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.written == tok.Generation {
		return nil
	}
	data, err := f.content(ctx, tokens, tok)
	if err != nil {
		return err
	}
	if f.cfg.WrapTTL == 0 && tok.Wrapped == nil && f.holds(data) {
		// Same token already on disk with the right mode and owner (a
		// restart or reload): leave the file alone.
		f.written = tok.Generation
		return nil
	}
	opts := atomicfile.Options{Mode: f.cfg.Mode, UID: f.uid, GID: f.gid}
	if err := atomicfile.WriteFile(f.cfg.Path, data, opts); err != nil {
		return err
	}
	f.written = tok.Generation
	return nil
}

func (f *File) content(ctx context.Context, tokens *auth.Tokens, tok auth.Token) ([]byte, error) {
	if tok.Wrapped != nil {
		return json.Marshal(tok.Wrapped)
	}
	if f.cfg.WrapTTL == 0 {
		return []byte(tok.Value), nil
	}
	c, err := tokens.Client()
	if err != nil {
		return nil, err
	}
	ttl := f.cfg.WrapTTL.String()
	c.SetWrappingLookupFunc(func(string, string) string { return ttl })
	s, err := c.Logical().WriteWithContext(ctx, "sys/wrapping/wrap", map[string]any{"token": tok.Value})
	if err != nil {
		return nil, fmt.Errorf("wrap the token: %w", err)
	}
	if s == nil || s.WrapInfo == nil {
		return nil, fmt.Errorf("wrap the token: the answer is not wrapped")
	}
	return json.Marshal(s.WrapInfo)
}

// holds reports whether the file already has data, mode and owner.
func (f *File) holds(data []byte) bool {
	fi, err := os.Stat(f.cfg.Path)
	if err != nil || fi.Mode().Perm() != f.cfg.Mode.Perm() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (f.uid >= 0 && int(st.Uid) != f.uid) || (f.gid >= 0 && int(st.Gid) != f.gid) {
		return false
	}
	b, err := os.ReadFile(f.cfg.Path)
	return err == nil && bytes.Equal(b, data)
}

// Set is every sink of the agent.
type Set struct {
	files  []*File
	logger *zap.Logger
	ready  chan struct{}
	// MinRetry and MaxRetry bound the backoff after a failed write.
	MinRetry, MaxRetry time.Duration
}

// NewSet builds the sinks of cfgs. A sink equal to one in prev (the set
// before a reload) is reused, so that it is not rewritten for a token it
// already holds. It fails when an owner or group cannot be resolved.
func NewSet(cfgs []config.Sink, prev *Set, logger *zap.Logger) (*Set, error) {
	s := &Set{logger: logger, ready: make(chan struct{}), MinRetry: time.Second, MaxRetry: time.Minute}
	for _, c := range cfgs {
		if f := prev.find(c); f != nil {
			s.files = append(s.files, f)
			continue
		}
		f, err := NewFile(c)
		if err != nil {
			return nil, err
		}
		s.files = append(s.files, f)
	}
	return s, nil
}

func (s *Set) find(c config.Sink) *File {
	if s == nil {
		return nil
	}
	for _, f := range s.files {
		if config.SameSink(f.cfg, c) {
			return f
		}
	}
	return nil
}

// Ready is closed once every sink has written a token (at once, when
// Run starts, with no sinks). Run must be called only once.
func (s *Set) Ready() <-chan struct{} { return s.ready }

// Run writes each new token of tokens to every sink until ctx ends. A
// failing sink is logged and retried with backoff; it delays Ready but
// never ends Run.
func (s *Set) Run(ctx context.Context, tokens *auth.Tokens) {
	remaining := int64(len(s.files))
	if remaining == 0 {
		close(s.ready)
	}
	wroteFirst := func() {
		if atomic.AddInt64(&remaining, -1) == 0 {
			close(s.ready)
		}
	}
	var wg sync.WaitGroup
	for _, f := range s.files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runFile(ctx, tokens, f, wroteFirst)
		}()
	}
	wg.Wait()
}

func (s *Set) runFile(ctx context.Context, tokens *auth.Tokens, f *File, wroteFirst func()) {
	var once sync.Once
	b := auth.NewBackoff(s.MinRetry, s.MaxRetry)
	for {
		tok, changed := tokens.Current()
		if tok.Generation > 0 {
			if err := f.Write(ctx, tokens, tok); err != nil {
				if ctx.Err() != nil {
					return
				}
				wait := b.Next()
				s.logger.Error("cannot write sink", zap.String("path", f.cfg.Path), zap.Error(err), zap.Duration("retry_in", wait))
				select {
				case <-ctx.Done():
					return
				case <-changed:
				case <-time.After(wait):
				}
				continue
			}
			b.Reset()
			s.logger.Debug("sink holds the current token", zap.String("path", f.cfg.Path), zap.Uint64("generation", tok.Generation))
			once.Do(wroteFirst)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
