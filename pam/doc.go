// Package pam is latchkey-ssh-helper's logic: sshd's PAM stack runs the
// helper through pam_exec with the typed one-time password on stdin, and the
// helper exits 0 only when Vault confirms it was issued for this user, this
// host and an allowed role.
//
// A login reads top to bottom in Helper.Run: read the request (request.go),
// ask Vault (verify.go, with failover and one deadline; totp.go for TOTP
// mode), check user, IP and role (checks.go), write one audit record
// (audit.go). Configuration is vault-ssh-helper's file plus latchkey's
// additions (config.go).
package pam
