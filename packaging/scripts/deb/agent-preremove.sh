#!/bin/sh
# Stop the agent before its binary goes away, on removal only; upgrades
# keep it running. The image builder enabled it (systemctl enable), not this
# package, so deb-systemd-helper knows nothing of it: disable it here, or
# its multi-user.target.wants link outlives the unit.
set -e
if [ "$1" = remove ]; then
	if [ -d /run/systemd/system ]; then
		deb-systemd-invoke stop latchkey-agent.service >/dev/null || true
	fi
	# systemctl disable works without a running systemd (an image's chroot).
	if command -v systemctl >/dev/null 2>&1; then
		systemctl --system disable latchkey-agent.service >/dev/null 2>&1 || true
	fi
fi
exit 0
