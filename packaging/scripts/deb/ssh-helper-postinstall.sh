#!/bin/sh
# The package never edits sshd's PAM stack itself: the image builder runs
# install-pam once its config is in place. Say so on the first install.
set -e
if [ "$1" = configure ] && [ -z "$2" ]; then
	cat <<'MSG'
latchkey-ssh-helper installed; sshd is unchanged. Next steps:
  1. write /etc/latchkey-ssh-helper.d/config.hcl (an example is there)
  2. latchkey-ssh-helper install-pam -dry-run, then latchkey-ssh-helper install-pam
  3. latchkey-ssh-helper doctor
  4. systemctl reload ssh
MSG
fi
exit 0
