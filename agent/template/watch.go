package template

import (
	"path/filepath"
	"slices"
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

func (m *Manager) onFileEvent(ev fsnotify.Event) {
	for i, u := range m.units {
		if slices.Contains(m.state[i].files, ev.Name) {
			m.state[i].dirty = true
		}
		switch ev.Name {
		case u.cfg.Source:
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) == 0 {
				continue
			}
			m.state[i].reloadAt = m.o.Clock.Now().Add(m.o.Config.SourceQuiet)
		case u.cfg.Destination:
			// Deleted or altered by someone else: render puts it back (and
			// does nothing when it is already right).
			m.state[i].dirty = true
		}
	}
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
