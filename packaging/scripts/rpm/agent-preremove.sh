#!/bin/sh
# Stop the agent before its binary goes away, on removal only (rpm passes 0
# remaining installs); upgrades keep it running. The image builder enabled
# it (systemctl enable), not this package: disable it here, or its
# multi-user.target.wants link outlives the unit.
set -e
if [ "$1" = 0 ]; then
	if [ -d /run/systemd/system ]; then
		systemctl stop latchkey-agent.service >/dev/null 2>&1 || true
	fi
	# systemctl disable works without a running systemd (an image's chroot).
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable latchkey-agent.service >/dev/null 2>&1 || true
	fi
fi
exit 0
