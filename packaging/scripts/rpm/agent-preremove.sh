#!/bin/sh
# Stop the agent before its binary goes away, on removal only (deb passes
# "remove", rpm passes 0 remaining installs); upgrades keep it running.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl stop latchkey-agent.service >/dev/null 2>&1 || true
		systemctl disable latchkey-agent.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
