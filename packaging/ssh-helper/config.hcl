# latchkey-ssh-helper configuration: /etc/latchkey-ssh-helper.d/config.hcl
# vault-ssh-helper's keys keep their meaning (a vault-ssh-helper config works
# unchanged); the keys after the blank line are latchkey's. See the README.

vault_addr = "https://vault.example.com:8200"
ssh_mount_point = "ssh"
# namespace = "team-a"
# ca_cert = "/etc/ssl/certs/vault-ca.pem"
# ca_path = "/etc/ssl/certs"
# tls_server_name = "vault.example.com"
tls_skip_verify = false
# Comma-separated; "*" admits every role, empty refuses every login.
allowed_roles = "*"
# IPs an OTP may name besides this host's own addresses (NAT, load balancers).
# allowed_cidr_list = "10.0.0.0/8, 192.168.0.0/16"

# Failover: tried in order after vault_addr, within the one deadline.
# vault_addrs = ["https://vault-2.example.com:8200", "https://vault-3.example.com:8200"]
# Bound on the whole run (TLS, retries, failover); keep it well under sshd's LoginGraceTime.
timeout = "10s"
# One record per attempt: auto (journal, else syslog), journal, syslog or off.
audit = "auto"
# audit_file = "/var/log/latchkey-ssh-helper.log"
# mode = "totp" checks 6-8 digit codes with Vault's TOTP engine instead:
# mode = "totp"
# totp_mount = "totp"
# totp_key_pattern = "{{user}}"
# token_file = "/run/latchkey/token"
