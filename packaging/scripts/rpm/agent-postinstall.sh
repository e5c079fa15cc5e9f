#!/bin/sh
# Reload unit files; never enable or start the agent: an image builder
# (Packer) decides that, after writing /etc/latchkey/agent.hcl. The next
# steps are printed while the service is not enabled, as deb's postinst
# does: on the first install, and on a reinstall or upgrade of an agent
# nobody enabled (or whose removal disabled it).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade restarts a running (or still starting) agent so the new
	# binary takes over; a stopped one stays stopped, a disabled one
	# disabled. --no-block: the unit is Type=notify with
	# TimeoutStartSec=infinity and is ready only after its first login, so a
	# blocking restart with Vault unreachable would hang rpm (and the whole
	# dnf transaction) for ever.
	if [ "$1" -ge 2 ] 2>/dev/null; then
		systemctl --no-block try-restart latchkey-agent.service >/dev/null 2>&1 || true
	fi
fi
if ! systemctl --quiet is-enabled latchkey-agent.service 2>/dev/null; then
	cat <<'MSG'
latchkey-agent installed. Next steps:
  1. write /etc/latchkey/agent.hcl (an example is there)
  2. latchkey-agent validate -config /etc/latchkey/agent.hcl
  3. latchkey-agent doctor -config /etc/latchkey/agent.hcl
  4. systemctl enable --now latchkey-agent
MSG
fi
exit 0
