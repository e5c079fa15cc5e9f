package template

import "time"

// SettleEvery bounds how often Options.Settle runs: a burst that ends
// sooner after the last call waits for the next quiet point after it.
const SettleEvery = time.Minute

// settled is what settle saw when it last called Options.Settle.
type settled struct {
	runs int64     // executions of all units
	at   time.Time // when (zero: never)
}

// settle calls Options.Settle when the render loop is about to wait after
// a burst of executions (some unit ran since the last call), at most once
// per SettleEvery. A burst (the first render, a changed secret) leaves
// freed heap that the runtime would hand back to the OS only slowly; the
// agent's Settle returns it at once, which is cheap on its small heap.
func (m *Manager) settle() {
	if m.o.Settle == nil {
		return
	}
	var n int64
	for _, u := range m.units {
		n += u.runs.Load()
	}
	now := m.o.Clock.Now()
	if n == m.settled.runs || (!m.settled.at.IsZero() && now.Sub(m.settled.at) < SettleEvery) {
		return
	}
	m.settled = settled{runs: n, at: now}
	m.o.Settle()
}
