package template

// Inherit makes m, not yet running, carry on from prev, which has stopped:
// a reload that changed some templates builds a new Manager, and the
// templates it did not change must go on as they were — no secret fetched
// again, no certificate issued again, no destination rewritten, no command
// run. m starts with what prev fetched (each result with its lease and
// refresh time), so that an unchanged template renders the same output,
// which is not written again. What no template of m uses is dropped.
//
// m also takes over prev's template commands (see commands.go): the one
// still running goes on, is waited for before m starts one, and is not run
// again for a template whose output did not change; the pending ones run
// after their template's first render. The pending commands of templates
// m no longer has are forgotten.
// prev of another type (agent/runner passes the replaced component) is
// ignored.
func (m *Manager) Inherit(from any) {
	prev, ok := from.(*Manager)
	if !ok || prev == nil || prev == m {
		return
	}
	for key, d := range prev.deps {
		r, ok := prev.brain.get(key)
		if !ok || r.err != nil || len(d.users) == 0 {
			continue
		}
		m.brain.set(key, r)
		// Users are added back by the first execution of each template
		// that still uses the query.
		m.deps[key] = &dep{q: d.q, users: map[int]bool{}, next: d.next}
	}
	m.takeCommands(prev)
	for k, v := range prev.mounts.m {
		if m.mounts.m == nil {
			m.mounts.m = map[string]kvMount{}
		}
		m.mounts.m[k] = v
	}
}

// Adopt makes m, not yet running, take over the template commands of
// prev, a Manager an earlier reload stopped without a successor (its
// config had no templates): the command still running goes on, is waited
// for, and is not run again for a template whose output did not change.
// Unlike Inherit, nothing prev fetched is kept: its leases were not
// renewed since it stopped. Adopt returns false, and does nothing, for
// prev of another type.
func (m *Manager) Adopt(from any) bool {
	prev, ok := from.(*Manager)
	if !ok || prev == nil || prev == m {
		return false
	}
	m.takeCommands(prev)
	return true
}

// takeCommands gives m prev's template commands (see commands.go), and
// forgets the pending ones of templates m does not have.
func (m *Manager) takeCommands(prev *Manager) {
	m.cmds = prev.cmds
	m.cmds.moveTo(m.o.StateDir, m.o.Logger)
	m.cmds.prune(m.units)
	m.cmds.handedOver()
}
