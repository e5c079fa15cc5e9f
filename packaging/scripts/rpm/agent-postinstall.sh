#!/bin/sh
# Reload unit files; never enable or start the agent: an image builder
# (Packer) decides that, after writing /etc/latchkey/agent.hcl. The first
# install (rpm passes 1) prints the next steps, as deb's postinst does.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade restarts a running agent so the new binary takes over.
	if systemctl is-active --quiet latchkey-agent.service; then
		systemctl try-restart latchkey-agent.service >/dev/null 2>&1 || true
	fi
fi
if [ "$1" = 1 ]; then
	cat <<'MSG'
latchkey-agent installed. Next steps:
  1. write /etc/latchkey/agent.hcl (an example is there)
  2. latchkey-agent validate -config /etc/latchkey/agent.hcl
  3. latchkey-agent doctor -config /etc/latchkey/agent.hcl
  4. systemctl enable --now latchkey-agent
MSG
fi
exit 0
