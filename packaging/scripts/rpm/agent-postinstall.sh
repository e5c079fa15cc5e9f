#!/bin/sh
# Reload unit files; never enable or start the agent: an image builder
# (Packer) decides that, after writing /etc/latchkey/agent.hcl.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade restarts a running agent so the new binary takes over.
	if systemctl is-active --quiet latchkey-agent.service; then
		systemctl try-restart latchkey-agent.service >/dev/null 2>&1 || true
	fi
fi
exit 0
