package template

import (
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// The file watch: edited sources are read again once quiet, a destination
// changed by someone else is put back, and a file read with `file`
// re-renders its template.

// watch adds the directories of sources and destinations to w (watching a
// directory sees a file replaced by rename, which watching the file would
// not).
func (m *Manager) watch(w *fsnotify.Watcher) {
	dirs := map[string]bool{}
	for _, u := range m.units {
		for _, p := range []string{u.cfg.Source, u.cfg.Destination} {
			if p != "" {
				dirs[filepath.Dir(p)] = true
			}
		}
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			m.o.Logger.Debug("cannot watch directory (yet)", zap.String("dir", d), zap.Error(err))
		}
	}
}

// onFileEvents handles ev and every event already queued behind it, so
// that the writes of a render (several events per file) cost one turn of
// the loop, not one each.
func (m *Manager) onFileEvents(ev fsnotify.Event, events <-chan fsnotify.Event) {
	m.onFileEvent(ev)
	for range 4096 {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			m.onFileEvent(ev)
		default:
			return
		}
	}
}

func (m *Manager) onFileEvent(ev fsnotify.Event) {
	if m.byPath == nil {
		m.byPath = map[string][]int{}
		for i, u := range m.units {
			for _, p := range []string{u.cfg.Source, u.cfg.Destination} {
				if p != "" && !slices.Contains(m.byPath[p], i) {
					m.byPath[p] = append(m.byPath[p], i)
				}
			}
		}
	}
	for i := range m.units {
		if slices.Contains(m.state[i].files, ev.Name) {
			m.state[i].dirty = true
		}
	}
	for _, i := range m.byPath[ev.Name] {
		u, st := m.units[i], &m.state[i]
		switch ev.Name {
		case u.cfg.Source:
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) == 0 {
				continue
			}
			st.reloadAt = m.o.Clock.Now().Add(m.o.Config.SourceQuiet)
		case u.cfg.Destination:
			// Deleted or altered by someone else: render puts it back (and
			// does nothing when it is already right). The event of the
			// agent's own write (the file is as it left it) is not a change.
			if st.written != (destID{}) && identify(u.cfg.Destination) == st.written {
				continue
			}
			st.dirty = true
		}
	}
}

// destID is what tells a file from another or from an altered one: the
// inode, and its change time (any write, chmod, chown or rename moves it).
type destID struct {
	dev, ino     uint64
	ctime, mtime int64
	size         int64
	mode         uint32
}

// identify returns the destID of the file at p, not following a symlink
// (zero when there is none).
func identify(p string) destID {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return destID{}
	}
	return destID{dev: uint64(st.Dev), ino: st.Ino, ctime: st.Ctim.Nano(), mtime: st.Mtim.Nano(), size: st.Size, mode: st.Mode}
}

// reloadSources reads again the edited sources that have been quiet long
// enough; one that does not load keeps the previous template.
func (m *Manager) reloadSources() {
	now := m.o.Clock.Now()
	for i, u := range m.units {
		st := &m.state[i]
		if st.reloadAt.IsZero() || now.Before(st.reloadAt) {
			continue
		}
		st.reloadAt = time.Time{}
		if err := u.load(); err != nil {
			m.o.Logger.Error("template source changed but does not load; keeping the previous one", zap.String("template", u.name), zap.Error(err))
			continue
		}
		m.o.Logger.Info("template source changed", zap.String("template", u.name))
		st.dirty = true
	}
}
