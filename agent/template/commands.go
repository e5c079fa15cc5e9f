package template

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/agent/template/command"
)

// Template commands outlive the Manager that started them.
//
// Design: a manager never kills a command when its Run ends. A reload
// stops the old manager (its Run returns at once, the command goes on),
// and Inherit hands the command still running, with what is pending, to
// the new manager: the reload does not wait for the command, the command
// is not killed, and the new manager, which renders the same output and
// so writes nothing, does not run it again; it only waits for it before it
// starts a command of its own (commands run one at a time). Only when the
// agent stops (Finish) is a running command stopped: SIGTERM, then SIGKILL
// after command.StopGrace.
//
// A command that did not run to its end (the agent stopped, crashed or
// lost power) is pending: a record in the state directory, written before
// it starts and removed when it ends (success or failure). At the next
// start, a template with a record runs its command once after its first
// render, although its destination is current. A record is named after the
// template's destination and command (pendingName), so that it stays valid
// only while both are unchanged.

// pendingPrefix begins the name of every pending command record.
const pendingPrefix = "template-command-"

// pendingRecord is the state record of a command that has not run to its
// end. Once it has started, PID and Process (command.Identity) name its
// process: an agent killed while it ran (kill -9, OOM; outside systemd,
// which kills the rest of the unit) leaves it running, and the next start
// waits for it rather than run the command a second time at once.
type pendingRecord struct {
	Destination string    `json:"destination"`
	Command     []string  `json:"command"`
	Since       time.Time `json:"since"`
	PID         int       `json:"pid,omitempty"`
	Process     string    `json:"process,omitempty"`
	Started     time.Time `json:"started,omitzero"`
}

// pendingName is the record name of t's command: a hash of its cleaned
// destination and its argv.
func pendingName(t config.Template) string {
	h := sha256.New()
	h.Write([]byte(filepath.Clean(t.Destination)))
	for _, a := range t.Exec.Command {
		h.Write([]byte{0})
		h.Write([]byte(a))
	}
	return pendingPrefix + hex.EncodeToString(h.Sum(nil)[:12])
}

func hasCommand(t config.Template) bool { return t.Exec != nil && len(t.Exec.Command) > 0 }

// commands is the state of template commands that outlives one Manager:
// which are pending, and the one still running. Managers share it through
// Inherit; the goroutine that waits for a command updates it when the
// command ends, hence the lock.
type commands struct {
	log *zap.Logger

	mu sync.Mutex
	// dir keeps the records; nil without a state directory (the records
	// are then kept in memory only, for the reloads of this process).
	dir *state.Dir
	// pending holds the record names of the commands that have not run
	// to their end, the running one included.
	pending map[string]bool
	running *runningCommand
	// loaded is set once the records of an earlier run were read (by the
	// first Run; an inherited state is loaded).
	loaded bool
}

// runningCommand is a started command; done is closed once its end is
// logged and its record removed (or kept, when it was stopped). adopted
// is set for one an earlier agent started (command.Adopt).
type runningCommand struct {
	proc    *command.Proc
	unit    string
	name    string
	done    chan struct{}
	adopted bool
}

func newCommands(stateDir string, log *zap.Logger) *commands {
	c := &commands{log: log, pending: map[string]bool{}}
	if stateDir != "" {
		c.dir = &state.Dir{Path: stateDir, Logger: log}
	}
	return c
}

// isPending reports whether the command named name has not run to its
// end, whether it is the one running now, and whether that one was started
// by an earlier agent (adopted).
func (c *commands) isPending(name string) (pending, running, adopted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.running
	running = r != nil && r.name == name && !isClosed(r.done)
	return c.pending[name], running, running && r.adopted
}

// load reads the records an earlier run left (once), keeps those of units
// with a command, and removes the others: their template is gone, or its
// destination or command changed.
func (c *commands) load(units []*unit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		return
	}
	c.loaded = true
	if c.dir == nil {
		return
	}
	names, err := c.dir.Names(pendingPrefix)
	if err != nil {
		c.log.Warn("pending template commands not read", zap.Error(err))
		return
	}
	want := byPendingName(units)
	for _, n := range names {
		var rec pendingRecord
		_, err := c.dir.Load(n, &rec)
		// A record of a configured template that cannot be read now (not
		// a corrupt one) still says the command was cut short: it runs
		// again, as its record asks, rather than being forgotten.
		if u, ok := want[n]; ok && (err == nil || !errors.Is(err, state.ErrCorrupt)) {
			if err != nil {
				c.log.Warn("pending template command record unreadable; the command runs again", zap.String("template", u.name), zap.Error(err))
				rec = pendingRecord{}
			}
			c.pending[n] = true
			if c.running == nil {
				if p := command.Adopt(rec.Command, rec.PID, rec.Process, rec.Started, u.cfg.Exec.Timeout); p != nil {
					r := &runningCommand{proc: p, unit: u.name, name: n, done: make(chan struct{}), adopted: true}
					c.running = r
					go c.ended(r)
					c.log.Warn("template command the agent started before it was killed is still running; it is waited for, then run again (how it ends is not known here)",
						zap.String("template", u.name), zap.Int("pid", rec.PID), zap.Time("started", rec.Started))
					continue
				}
			}
			c.log.Info("template command did not run to its end before the agent last stopped; it runs after the first render",
				zap.String("template", u.name), zap.Time("pending_since", rec.Since))
			continue
		}
		if err != nil {
			c.log.Warn("pending template command record unreadable; removed", zap.Error(err))
		} else {
			c.log.Info("removed the pending command record of a template no longer configured (or whose destination or command changed)",
				zap.String("template", rec.Destination))
		}
		c.remove(n)
	}
}

// prune forgets the pending commands no unit runs any more (a reload
// changed or removed their template); the running one keeps its record
// until it ends.
func (c *commands) prune(units []*unit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := byPendingName(units)
	for n := range c.pending {
		if _, ok := want[n]; ok || (c.running != nil && c.running.name == n) {
			continue
		}
		delete(c.pending, n)
		c.remove(n)
	}
}

func byPendingName(units []*unit) map[string]*unit {
	m := map[string]*unit{}
	for _, u := range units {
		if hasCommand(u.cfg) {
			m[pendingName(u.cfg)] = u
		}
	}
	return m
}

// moveTo makes dir (a reload changed state_dir) keep the records.
func (c *commands) moveTo(stateDir string, log *zap.Logger) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = log
	if (c.dir == nil && stateDir == "") || (c.dir != nil && c.dir.Path == stateDir) {
		return
	}
	old := c.dir
	c.dir = nil
	if stateDir != "" {
		c.dir = &state.Dir{Path: stateDir, Logger: log}
	}
	for n := range c.pending {
		var rec pendingRecord
		if old != nil {
			old.Load(n, &rec)
			old.Remove(n)
		}
		c.save(n, rec)
	}
}

// markPending records u's command as pending before it starts.
func (c *commands) markPending(u *unit, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[name] {
		return
	}
	c.pending[name] = true
	c.save(name, pendingRecord{Destination: filepath.Clean(u.cfg.Destination), Command: u.cfg.Exec.Command, Since: time.Now().UTC()})
}

// save writes record name; c.mu is held. A failure costs only the rerun
// after a crash: it is logged, and the command runs.
func (c *commands) save(name string, rec pendingRecord) {
	if c.dir == nil {
		return
	}
	if err := c.dir.Save(name, rec); err != nil {
		c.log.Warn("template command not recorded as pending: should the agent stop before it ends, it will not run again at the next start",
			zap.String("template", rec.Destination), zap.Error(err))
	}
}

// remove deletes record name; c.mu is held.
func (c *commands) remove(name string) {
	if c.dir == nil {
		return
	}
	if err := c.dir.Remove(name); err != nil {
		c.log.Warn("pending template command record not removed", zap.Error(err))
	}
}

// waitRunning waits for the running command (one a stopped manager
// handed over) to end. It returns false when ctx ended first.
func (c *commands) waitRunning(ctx context.Context) bool {
	c.mu.Lock()
	r := c.running
	c.mu.Unlock()
	if r == nil {
		return true
	}
	select {
	case <-r.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// start starts u's command (its record written by markPending) as the
// running one. A command that cannot start is logged as failed and no
// longer pending; start then returns nil.
func (c *commands) start(u *unit, name string) *runningCommand {
	p, err := command.Start(u.cfg.Exec)
	if err != nil {
		c.mu.Lock()
		c.log.Error("template command failed", zap.String("template", u.name), zap.Error(err))
		delete(c.pending, name)
		c.remove(name)
		c.mu.Unlock()
		return nil
	}
	r := &runningCommand{proc: p, unit: u.name, name: name, done: make(chan struct{})}
	c.mu.Lock()
	c.running = r
	// Its process, for a next start should this agent be killed meanwhile.
	c.save(name, pendingRecord{Destination: filepath.Clean(u.cfg.Destination), Command: u.cfg.Exec.Command, Since: time.Now().UTC(),
		PID: p.Pid(), Process: command.Identity(p.Pid()), Started: time.Now().UTC()})
	c.mu.Unlock()
	go c.ended(r)
	return r
}

// ended waits for r's end and logs it. A command that ended by itself,
// well or not, is no longer pending: a failing one runs again at the next
// change, as before. One the agent's stop ended keeps its record, and runs
// again at the next start.
func (c *commands) ended(r *runningCommand) {
	err := r.proc.Err()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(r.done)
	if c.running == r {
		c.running = nil
	}
	switch {
	case errors.Is(err, command.ErrAdopted):
		// Still pending: the first render that comes after runs it.
		c.log.Info("the template command left running by the agent's previous run has ended; it runs again", zap.String("template", r.unit))
		return
	case errors.Is(err, command.ErrStopped):
		msg := "template command stopped with the agent before its end; it runs again at the next start"
		if c.dir == nil {
			msg = "template command stopped with the agent before its end; no state directory: it will not run again"
		}
		c.log.Warn(msg, zap.String("template", r.unit), zap.Error(err))
		return
	case err != nil:
		c.log.Error("template command failed", zap.String("template", r.unit), zap.Error(err))
	default:
		c.log.Debug("template command done", zap.String("template", r.unit))
	}
	delete(c.pending, r.name)
	c.remove(r.name)
}

// stop ends the running command, if any, as the agent stops (command.Proc
// Stop: SIGTERM, SIGKILL after command.StopGrace), and returns once it has
// ended and its end is logged.
func (c *commands) stop() {
	c.mu.Lock()
	r := c.running
	c.mu.Unlock()
	if r == nil || isClosed(r.done) {
		return
	}
	c.log.Info("stopping: the template command still running gets SIGTERM", zap.String("template", r.unit),
		zap.Duration("grace", command.StopGrace))
	r.proc.Stop(command.StopGrace)
	<-r.done
}

// handedOver logs the running command, if any, that a reload leaves
// running under the new configuration.
func (c *commands) handedOver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.running; r != nil && !isClosed(r.done) {
		c.log.Info("reload: a template command is still running; it goes on to its end and does not run again",
			zap.String("template", r.unit))
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// runCommands runs the commands of the units idx, in order, after their
// render: each is recorded as pending first, and a command a stopped
// manager handed over is waited for before the first starts. When ctx ends
// meanwhile, runCommands returns at once, leaving the running command
// running (a reload hands it over, a stop stops it: see Finish) and the
// others pending.
func (m *Manager) runCommands(ctx context.Context, idx []int) {
	if len(idx) == 0 {
		return
	}
	for _, i := range idx {
		m.cmds.markPending(m.units[i], pendingName(m.units[i].cfg))
	}
	if !m.cmds.waitRunning(ctx) {
		return
	}
	for _, i := range idx {
		if ctx.Err() != nil {
			return
		}
		u := m.units[i]
		// Again: the command waited for may have been this one, whose end
		// removed the record.
		m.cmds.markPending(u, pendingName(u.cfg))
		r := m.cmds.start(u, pendingName(u.cfg))
		if r == nil {
			continue
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			return
		}
	}
}

// Finish is called once Run has returned, when the agent stops (and no
// successor inherits m): a template command still running gets SIGTERM,
// then SIGKILL after command.StopGrace (or at its timeout, if sooner), and
// keeps its pending record. Finish returns once it has ended.
func (m *Manager) Finish() { m.cmds.stop() }
