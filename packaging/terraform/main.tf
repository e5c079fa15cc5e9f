# SSH one-time passwords for latchkey-ssh-helper.
resource "vault_mount" "ssh_otp" {
  path = var.ssh_otp_mount
  type = "ssh"
}

resource "vault_ssh_secret_backend_role" "otp" {
  backend       = vault_mount.ssh_otp.path
  name          = var.ssh_otp_role
  key_type      = "otp"
  default_user  = var.ssh_users[0]
  allowed_users = join(",", var.ssh_users)
  cidr_list     = join(",", var.ssh_cidrs)
}

# SSH CAs: users' certificates (sshd trusts the CA's public key) and hosts'.
resource "vault_mount" "ssh_client_signer" {
  path = var.ssh_ca_mount
  type = "ssh"
}

resource "vault_ssh_secret_backend_ca" "client" {
  backend              = vault_mount.ssh_client_signer.path
  generate_signing_key = true
}

resource "vault_ssh_secret_backend_role" "user_cert" {
  backend                 = vault_mount.ssh_client_signer.path
  name                    = "user"
  key_type                = "ca"
  allow_user_certificates = true
  allowed_users           = join(",", var.ssh_users)
  default_user            = var.ssh_users[0]
  default_extensions      = { "permit-pty" = "" }
  allowed_extensions      = "permit-pty,permit-port-forwarding"
  ttl                     = "1800"
  max_ttl                 = "3600"
}

resource "vault_mount" "ssh_host_signer" {
  path = var.ssh_host_ca_mount
  type = "ssh"
}

resource "vault_ssh_secret_backend_ca" "host" {
  backend              = vault_mount.ssh_host_signer.path
  generate_signing_key = true
}

# Host certificates name hosts under var.ssh_host_domains only (EC2's
# ip-10-0-1-5.eu-west-1.compute.internal is under "internal"). The agent's
# default principals are the hostname and the FQDN, and a short hostname
# (ip-10-0-1-5) is under no domain, so Vault refuses that request; the agent
# then signs for the FQDN alone, with a warning. To choose the names, give
# the agent's host_certificate principals (written per instance, say by
# cloud-init), or list hostnames here with allow_bare_domains. "*" would
# let any instance with the policy below certify any name.
resource "vault_ssh_secret_backend_role" "host_cert" {
  backend                 = vault_mount.ssh_host_signer.path
  name                    = "host"
  key_type                = "ca"
  allow_host_certificates = true
  allow_bare_domains      = false
  allow_subdomains        = true
  allowed_domains         = join(",", var.ssh_host_domains)
  ttl                     = "2592000"
}

# TOTP codes (the helper's mode = "totp"); keys are made per user.
resource "vault_mount" "totp" {
  path = var.totp_mount
  type = "totp"
}

# KV for the agent's templates.
resource "vault_mount" "secret" {
  path    = "secret"
  type    = "kv"
  options = { version = "2" }
}

# Policies: the agent's token reads the app's secrets, checks TOTP codes
# (the helper's TOTP mode reads the agent's sink) and has the host's keys
# signed (the ssh stanza's host_certificate). The OTP verify endpoint and
# the CAs' public keys need no token.
resource "vault_policy" "web" {
  name   = "web"
  policy = <<-EOT
    path "secret/data/app/web/*" { capabilities = ["read"] }
  EOT
}

resource "vault_policy" "totp_check" {
  name   = "totp-check"
  policy = <<-EOT
    path "${var.totp_mount}/code/*" { capabilities = ["update"] }
  EOT
}

resource "vault_policy" "ssh_host_cert" {
  name   = "ssh-host-cert"
  policy = <<-EOT
    path "${vault_mount.ssh_host_signer.path}/sign/${vault_ssh_secret_backend_role.host_cert.name}" { capabilities = ["update"] }
  EOT
}

# Auth methods of latchkey-agent.
resource "vault_auth_backend" "aws" {
  type = "aws"
}

resource "vault_aws_auth_backend_role" "web_ec2" {
  backend                  = vault_auth_backend.aws.path
  role                     = "web"
  auth_type                = "ec2"
  bound_account_ids        = var.aws_bound_account_ids
  token_policies           = [vault_policy.web.name, vault_policy.totp_check.name, vault_policy.ssh_host_cert.name]
  token_ttl                = 3600
  disallow_reauthentication = false
}

resource "vault_aws_auth_backend_role" "web_iam" {
  backend                  = vault_auth_backend.aws.path
  role                     = "web-iam"
  auth_type                = "iam"
  bound_iam_principal_arns = var.aws_bound_iam_principal_arns
  token_policies           = [vault_policy.web.name, vault_policy.totp_check.name, vault_policy.ssh_host_cert.name]
  token_ttl                = 3600
}

resource "vault_auth_backend" "alicloud" {
  type = "alicloud"
}

# The provider has no alicloud role resource: the role is written as is.
resource "vault_generic_endpoint" "alicloud_web" {
  count                = var.alicloud_role_arn == "" ? 0 : 1
  path                 = "auth/${vault_auth_backend.alicloud.path}/role/web"
  ignore_absent_fields = true
  data_json = jsonencode({
    arn            = var.alicloud_role_arn
    token_policies = [vault_policy.web.name, vault_policy.totp_check.name, vault_policy.ssh_host_cert.name]
    token_ttl      = 3600
  })
}

resource "vault_auth_backend" "approle" {
  type = "approle"
}

resource "vault_approle_auth_backend_role" "web" {
  backend        = vault_auth_backend.approle.path
  role_name      = "web"
  token_policies = [vault_policy.web.name, vault_policy.ssh_host_cert.name]
  token_ttl      = 3600
}
