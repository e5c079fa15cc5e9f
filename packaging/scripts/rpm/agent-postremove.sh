#!/bin/sh
# Erase (rpm passes 0 remaining installs): forget the unit, as deb's
# postrm does on remove. rpm has no purge: /var/lib/latchkey stays, as rpm
# keeps changed config files.
set -e
if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
