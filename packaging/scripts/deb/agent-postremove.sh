#!/bin/sh
# remove: forget the unit. purge: also the state (the AWS nonce, the
# Alibaba instance id) and the runtime directory; a plain remove keeps them
# so that a reinstall logs in with the same nonce.
set -e
case "$1" in
remove)
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
	;;
purge)
	if command -v deb-systemd-helper >/dev/null 2>&1; then
		deb-systemd-helper purge latchkey-agent.service >/dev/null || true
	fi
	rm -rf /var/lib/latchkey /run/latchkey
	;;
esac
exit 0
