output "helper_config" {
  description = "The lines of /etc/latchkey-ssh-helper.d/config.hcl these resources fit."
  value       = "ssh_mount_point = \"${vault_mount.ssh_otp.path}\"\nallowed_roles = \"${vault_ssh_secret_backend_role.otp.name}\"\n"
}

output "user_ca_public_key" {
  description = "For sshd's TrustedUserCAKeys (install-pam -trusted-user-ca-keys PATH)."
  value       = vault_ssh_secret_backend_ca.client.public_key
}
