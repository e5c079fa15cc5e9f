#!/bin/sh
# On removal, take the helper out of sshd's PAM stack first: a pam_exec
# line naming a binary that is gone refuses every login. uninstall-pam puts
# the distribution's lines back byte for byte and removes the drop-in.
set -e
if [ "$1" = remove ] && command -v latchkey-ssh-helper >/dev/null 2>&1 &&
	grep -q '^# latchkey-ssh-helper install-pam: begin' /etc/pam.d/sshd 2>/dev/null; then
	latchkey-ssh-helper uninstall-pam || true
	echo "latchkey-ssh-helper: sshd's PAM stack restored; reload sshd (systemctl reload ssh)"
fi
exit 0
