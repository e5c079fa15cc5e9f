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
		dirs[filepath.Dir(filepath.Clean(u.cfg.Destination))] = true
		for _, d := range u.srcDirs {
			dirs[d] = true
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
	// fsnotify names an event by the watched directory, cleaned, and the
	// file's name: paths are compared cleaned, or a source or destination
	// written "/etc/app//app.env" or "./app.tmpl" was never seen to change.
	name := filepath.Clean(ev.Name)
	if m.byPath == nil {
		m.byPath = map[string][]int{}
		for i, u := range m.units {
			p := filepath.Clean(u.cfg.Destination)
			m.byPath[p] = append(m.byPath[p], i)
		}
	}
	for i := range m.units {
		if slices.ContainsFunc(m.state[i].files, func(f string) bool { return filepath.Clean(f) == name }) {
			m.state[i].dirty = true
		}
	}
	// A source is looked at on any event in its directory or in the one
	// its symlink leads to: an edit of a symlinked source's target, or a
	// swap of the link (a Kubernetes ConfigMap's ..data), names another
	// file than the source.
	dir := filepath.Dir(name)
	for i, u := range m.units {
		if slices.Contains(u.srcDirs, dir) {
			m.sourceEvent(i)
		}
	}
	for _, i := range m.byPath[name] {
		st := &m.state[i]
		// Deleted or altered by someone else: render puts it back (and
		// does nothing when it is already right). The event of the
		// agent's own write (the file is as it left it) is not a change.
		if st.written != (destID{}) && identify(m.units[i].cfg.Destination) == st.written {
			continue
		}
		st.dirty = true
	}
}

// sourceEvent reads unit i's source again once it has been quiet for
// SourceQuiet, if the file its path leads to is not the one last read.
func (m *Manager) sourceEvent(i int) {
	if u := m.units[i]; u.cfg.Source != "" && stat(u.cfg.Source) != u.srcID {
		m.state[i].reloadAt = m.o.Clock.Now().Add(m.o.Config.SourceQuiet)
	}
}

// rescan is what an overflow of the watch's queue (events lost) calls:
// every template is rendered again (each write compares with what is
// there, so only what someone changed is written) and every source is
// looked at.
func (m *Manager) rescan() {
	for i := range m.units {
		m.state[i].dirty = true
		m.sourceEvent(i)
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
	return toID(&st)
}

// stat is identify following symlinks: what a source's path leads to.
func stat(p string) destID {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return destID{}
	}
	return toID(&st)
}

func toID(st *syscall.Stat_t) destID {
	return destID{dev: uint64(st.Dev), ino: st.Ino, ctime: st.Ctim.Nano(), mtime: st.Mtim.Nano(), size: st.Size, mode: st.Mode}
}

// sourceDirs are the directories whose events may mean that source p
// changed: its own, and the one of the file its symlinks lead to.
func sourceDirs(p string) []string {
	dirs := []string{filepath.Dir(filepath.Clean(p))}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		if d := filepath.Dir(r); d != dirs[0] {
			dirs = append(dirs, d)
		}
	}
	return dirs
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
		err := u.load()
		if m.watcher != nil {
			for _, d := range u.srcDirs { // the link may lead elsewhere now
				m.watcher.Add(d) // idempotent
			}
		}
		if err != nil {
			m.o.Logger.Error("template source changed but does not load; keeping the previous one", zap.String("template", u.name), zap.Error(err))
			continue
		}
		m.o.Logger.Info("template source changed", zap.String("template", u.name))
		st.dirty = true
	}
}
