#!/bin/sh
# Reload unit files; never enable or start the agent: an image builder
# (Packer) decides that, after writing /etc/latchkey/agent.hcl.
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
	# An upgrade restarts a running agent so the new binary takes over.
	if [ -n "$2" ]; then
		deb-systemd-invoke try-restart latchkey-agent.service >/dev/null || true
	fi
fi
if [ "$1" = configure ] && [ -z "$2" ]; then
	cat <<'MSG'
latchkey-agent installed. Next steps:
  1. write /etc/latchkey/agent.hcl (an example is there)
  2. latchkey-agent validate -config /etc/latchkey/agent.hcl
  3. latchkey-agent doctor -config /etc/latchkey/agent.hcl
  4. systemctl enable --now latchkey-agent
MSG
fi
exit 0
