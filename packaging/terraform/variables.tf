variable "ssh_otp_mount" {
  description = "Mount of the SSH engine issuing one-time passwords (the helper's ssh_mount_point)."
  type        = string
  default     = "ssh-otp"
}

variable "ssh_otp_role" {
  description = "OTP role (the helper's allowed_roles)."
  type        = string
  default     = "web"
}

variable "ssh_users" {
  description = "Local users an OTP may be issued for; the first is the default."
  type        = list(string)
  default     = ["ubuntu", "ec2-user"]
}

variable "ssh_cidrs" {
  description = "Addresses of the hosts OTPs are for (the instances' VPC)."
  type        = list(string)
  default     = ["10.0.0.0/8"]
}

variable "ssh_ca_mount" {
  description = "SSH CA signing users' keys (sshd's TrustedUserCAKeys; install-pam -trusted-user-ca-keys)."
  type        = string
  default     = "ssh-client-signer"
}

variable "ssh_host_ca_mount" {
  description = "SSH CA signing the instances' host keys."
  type        = string
  default     = "ssh-host-signer"
}

variable "ssh_host_domains" {
  description = "Domains whose subdomains host certificates may name (the instances' FQDNs): see vault_ssh_secret_backend_role.host_cert."
  type        = list(string)
  default     = ["internal"]
}

variable "totp_mount" {
  description = "TOTP engine for the helper's mode = \"totp\"."
  type        = string
  default     = "totp"
}

variable "aws_bound_account_ids" {
  description = "AWS accounts whose instances may log in (auth/aws, ec2 and iam)."
  type        = list(string)
  default     = []
}

variable "aws_bound_iam_principal_arns" {
  description = "Instance-profile role ARNs for iam logins."
  type        = list(string)
  default     = []
}

variable "alicloud_role_arn" {
  description = "RAM role ARN of the Alibaba Cloud instances (auth/alicloud); empty: no role."
  type        = string
  default     = ""
}
