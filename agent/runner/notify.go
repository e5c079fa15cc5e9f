package runner

import (
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends one sd_notify state ("READY=1", "STATUS=...").
type Notifier func(state string)

// SystemdNotifier sends to $NOTIFY_SOCKET; without it (not under systemd)
// nothing is sent. Errors are ignored: systemd's view of the agent must
// never stop the agent.
func SystemdNotifier(state string) { _, _ = daemon.SdNotify(false, state) }

// watchdogInterval returns how often to send WATCHDOG=1 (half of
// WATCHDOG_USEC, as sd_watchdog_enabled(3) advises), or 0 when systemd
// asks for no watchdog.
func watchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// reloading is RELOADING=1 with the MONOTONIC_USEC systemd ≥ 253 wants.
func reloading() string {
	return "RELOADING=1\n" + daemon.SdNotifyMonotonicUsec()
}
