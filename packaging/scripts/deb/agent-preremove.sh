#!/bin/sh
# Stop the agent before its binary goes away, on removal only; upgrades
# keep it running.
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop latchkey-agent.service >/dev/null || true
fi
exit 0
