#!/bin/sh
# The package never edits sshd's PAM stack itself: the image builder runs
# install-pam once its config is in place. Say so while that is not done:
# on the first install, and on a reinstall or upgrade of a helper that is
# not in the stack (a removal undid install-pam, or it never ran), where
# the version argument alone cannot tell a reinstall from an upgrade.
set -e
if ! grep -q '^# latchkey-ssh-helper install-pam: begin' /etc/pam.d/sshd 2>/dev/null; then
	cat <<'MSG'
latchkey-ssh-helper installed; sshd is unchanged. Next steps:
  1. write /etc/latchkey-ssh-helper.d/config.hcl (an example is there)
  2. latchkey-ssh-helper install-pam -dry-run, then latchkey-ssh-helper install-pam
  3. latchkey-ssh-helper doctor
  4. systemctl reload sshd
MSG
fi
exit 0
