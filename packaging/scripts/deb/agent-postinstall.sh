#!/bin/sh
# Reload unit files; never enable or start the agent: an image builder
# (Packer) decides that, after writing /etc/latchkey/agent.hcl.
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
	# An upgrade restarts a running (or still starting) agent so the new
	# binary takes over; a stopped one stays stopped, a disabled one
	# disabled. --no-block: the unit is Type=notify with
	# TimeoutStartSec=infinity and is ready only after its first login, so a
	# blocking restart with Vault unreachable would hang dpkg (and every
	# apt-get after it) for ever. deb-systemd-invoke cannot pass --no-block:
	# policy-rc.d is asked here as it would ask it (101: do not run).
	if [ -n "$2" ]; then
		policy=${DPKG_ROOT:-}/usr/sbin/policy-rc.d
		rc=0
		if [ -x "$policy" ]; then
			"$policy" latchkey-agent.service try-restart >/dev/null 2>&1 || rc=$?
		fi
		if [ "$rc" != 101 ]; then
			systemctl --system --no-block try-restart latchkey-agent.service >/dev/null 2>&1 || true
		fi
	fi
fi
# The next steps, while they are not done: on the first install, and on a
# reinstall or upgrade of an agent whose service is not enabled (a removal
# disabled it, or nobody enabled it yet); dpkg passes the old version on a
# reinstall after a removal as on an upgrade, so $2 cannot tell them apart.
if [ "$1" = configure ] && ! systemctl --quiet is-enabled latchkey-agent.service 2>/dev/null; then
	cat <<'MSG'
latchkey-agent installed. Next steps:
  1. write /etc/latchkey/agent.hcl (an example is there)
  2. latchkey-agent validate -config /etc/latchkey/agent.hcl
  3. latchkey-agent doctor -config /etc/latchkey/agent.hcl
  4. systemctl enable --now latchkey-agent
MSG
fi
exit 0
