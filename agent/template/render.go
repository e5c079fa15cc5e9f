package template

import (
	"context"
	"fmt"
	"strconv"
)

// Render renders the template called name — its destination, its source,
// or its 1-based position in the config — and returns the output. Secret
// values are masked in what it returns unless showSecrets. Without dryRun
// the destination is also written (and its command run) as the agent would.
func (m *Manager) Render(ctx context.Context, name string, dryRun, showSecrets bool) ([]byte, error) {
	i, u, err := m.find(name)
	if err != nil {
		return nil, err
	}
	if !dryRun {
		if err := m.renderUnit(ctx, i, u); err != nil {
			return nil, err
		}
	}
	ex, err := m.complete(ctx, u, !showSecrets, nil)
	if err != nil {
		return nil, err
	}
	return ex.out, nil
}

func (m *Manager) find(name string) (int, *unit, error) {
	for i, u := range m.units {
		if name == u.cfg.Destination || (u.cfg.Source != "" && name == u.cfg.Source) {
			return i, u, nil
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 1 && n <= len(m.units) {
		return n - 1, m.units[n-1], nil
	}
	var names []string
	for _, u := range m.units {
		names = append(names, u.cfg.Destination)
	}
	return 0, nil, fmt.Errorf("no template %q (templates: %q, or their number)", name, names)
}
