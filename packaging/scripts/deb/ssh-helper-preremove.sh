#!/bin/sh
# On removal, take the helper out of sshd's PAM stack first: a pam_exec
# line naming a binary that is gone refuses every keyboard-interactive
# login. uninstall-pam puts the distribution's lines back byte for byte and
# removes the drop-in. When it fails, the removal stops (this script fails,
# so the package stays installed) rather than leave that line behind: what
# is left and what to run are printed. So it does when the binary is
# already gone (deleted by hand): the lines would outlive the package, and
# with it the only tool that takes them out.
set -e
pam=/etc/pam.d/sshd
dropin=/etc/ssh/sshd_config.d/50-latchkey.conf
ours() {
	grep -q '^# latchkey-ssh-helper install-pam: begin' "$pam" 2>/dev/null ||
		grep -q '^# Written by latchkey-ssh-helper install-pam' "$dropin" 2>/dev/null
}
left() {
	if grep -q '^# latchkey-ssh-helper install-pam: begin' "$pam" 2>/dev/null; then
		echo "  $pam still runs latchkey-ssh-helper; without the binary every keyboard-interactive login would be refused" >&2
	fi
	if grep -q '^# Written by latchkey-ssh-helper install-pam' "$dropin" 2>/dev/null; then
		echo "  $dropin is still in place" >&2
	fi
}
if [ "$1" = remove ] && ours && ! command -v latchkey-ssh-helper >/dev/null 2>&1; then
	echo "latchkey-ssh-helper: the binary is gone but install-pam's changes are not, so the package is not removed:" >&2
	left
	echo "Reinstall the package (apt-get install --reinstall latchkey-ssh-helper), then remove it again: the removal runs uninstall-pam first." >&2
	exit 1
fi
if [ "$1" = remove ] && ours; then
	if latchkey-ssh-helper uninstall-pam; then
		echo "latchkey-ssh-helper: sshd's PAM stack restored; reload sshd (systemctl reload ssh)"
	else
		echo "latchkey-ssh-helper: uninstall-pam failed (its reason is above), so the package is not removed:" >&2
		left
		echo "Fix what uninstall-pam reported, run \`latchkey-ssh-helper uninstall-pam\` until it succeeds, then remove the package again." >&2
		exit 1
	fi
fi
exit 0
