# Golden images with latchkey: the packages installed, sshd's PAM stack set
# up by install-pam, the configs in place and checked, and no state baked
# in (no AWS nonce, token, host key or host certificate).
#
#   packer build -var vault_addr=https://vault.internal:8200 \
#     -var vault_ca_file=vault-ca.pem -only='latchkey.amazon-ebs.debian' .
#
# The builders' own cloud credentials come from Vault through Packer's
# vault() function (VAULT_ADDR and VAULT_TOKEN in Packer's environment),
# never from plain-text variables. test/packaging checks this file with
# `packer validate -syntax-only` and parses it with hcl/v2.

variable "vault_addr" {
  type        = string
  description = "Vault as the instances reach it (https://)."
}

variable "vault_ca_file" {
  type        = string
  description = "PEM file of the CA that signed Vault's certificate."
}

variable "ssh_mount_point" {
  type    = string
  default = "ssh-otp"
}

variable "ssh_otp_role" {
  type    = string
  default = "web"
}

variable "agent_role" {
  type        = string
  default     = "web"
  description = "The instances' role in auth/aws or auth/alicloud."
}

variable "packages_dir" {
  type        = string
  default     = "../../dist"
  description = "Where `make package` left the .deb files."
}

variable "aws_region" {
  type    = string
  default = "eu-west-1"
}

variable "alicloud_region" {
  type    = string
  default = "cn-hangzhou"
}

locals {
  # The Alibaba Cloud AccessKey pair lives in Vault's KV, not in a variable.
  alicloud_access_key = vault("secret/data/packer/alicloud", "access_key")
  alicloud_secret_key = vault("secret/data/packer/alicloud", "secret_key")
}

source "amazon-ebs" "debian" {
  region        = var.aws_region
  instance_type = "t3.small"
  ssh_username  = "admin"
  ami_name      = "latchkey-debian-12-{{timestamp}}"
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      virtualization-type = "hvm"
    }
    owners      = ["136693071363"] # Debian
    most_recent = true
  }
  # AWS credentials: Vault's AWS secrets engine, short-lived.
  vault_aws_engine {
    name = "packer"
  }
}

source "alicloud-ecs" "debian" {
  access_key           = local.alicloud_access_key
  secret_key           = local.alicloud_secret_key
  region               = var.alicloud_region
  instance_type        = "ecs.g6.large"
  source_image         = "debian_12_6_x64_20G_alibase_20240711.vhd"
  ssh_username         = "root"
  image_name           = "latchkey-debian-12-{{timestamp}}"
  io_optimized         = true
  internet_charge_type = "PayByTraffic"
}

build {
  name    = "latchkey"
  sources = ["source.amazon-ebs.debian", "source.alicloud-ecs.debian"]

  provisioner "file" {
    sources     = [var.vault_ca_file]
    destination = "/tmp/vault-ca.pem"
  }

  provisioner "file" {
    source      = var.packages_dir
    destination = "/tmp/latchkey-dist"
  }

  provisioner "shell" {
    execute_command = "sudo -E sh -eu '{{.Path}}'"
    environment_vars = [
      "VAULT_ADDR=${var.vault_addr}",
      "SSH_MOUNT=${var.ssh_mount_point}",
      "SSH_ROLE=${var.ssh_otp_role}",
      "AGENT_ROLE=${var.agent_role}",
      "AGENT_METHOD=${source.type == "alicloud-ecs" ? "alicloud" : "aws"}",
      # The one method key besides role each needs: aws its login type (the
      # instance's signed identity document), alicloud the region of its STS endpoint.
      "AGENT_METHOD_KEY=${source.type == "alicloud-ecs" ? "region" : "type"}",
      "AGENT_METHOD_VALUE=${source.type == "alicloud-ecs" ? var.alicloud_region : "ec2"}",
    ]
    inline = [
      "apt-get install -y /tmp/latchkey-dist/latchkey-ssh-helper_*.deb /tmp/latchkey-dist/latchkey-agent_*.deb",
      "install -m 0644 -o root -g root /tmp/vault-ca.pem /etc/latchkey/vault-ca.pem",
      "printf 'vault_addr = \"%s\"\\nca_cert = \"/etc/latchkey/vault-ca.pem\"\\nssh_mount_point = \"%s\"\\nallowed_roles = \"%s\"\\naudit = \"auto\"\\n' \"$VAULT_ADDR\" \"$SSH_MOUNT\" \"$SSH_ROLE\" >/etc/latchkey-ssh-helper.d/config.hcl",
      "printf 'vault {\\n  address = \"%s\"\\n  ca_cert = \"/etc/latchkey/vault-ca.pem\"\\n}\\nauto_auth {\\n  method \"%s\" {\\n    config = {\\n      role = \"%s\"\\n      %s = \"%s\"\\n    }\\n  }\\n  sink \"file\" {\\n    config = {\\n      path = \"/run/latchkey/token\"\\n      mode = 0600\\n    }\\n  }\\n}\\n' \"$VAULT_ADDR\" \"$AGENT_METHOD\" \"$AGENT_ROLE\" \"$AGENT_METHOD_KEY\" \"$AGENT_METHOD_VALUE\" >/etc/latchkey/agent.hcl",
      "chmod 0640 /etc/latchkey/agent.hcl",
      "latchkey-ssh-helper install-pam -dry-run",
      "latchkey-ssh-helper install-pam",
      "latchkey-ssh-helper -verify-only -config /etc/latchkey-ssh-helper.d/config.hcl",
      "latchkey-agent validate -config /etc/latchkey/agent.hcl",
      "latchkey-ssh-helper doctor",
      "systemctl enable latchkey-agent",
    ]
  }

  # Nothing of this build's instance may be in the image: the AWS nonce and
  # token (the agent never ran, but be sure), sshd's host keys (and any host
  # certificate), cloud-init's record of this boot, the uploaded packages.
  provisioner "shell" {
    execute_command = "sudo -E sh -eu '{{.Path}}'"
    inline = [
      "systemctl stop latchkey-agent || true",
      "rm -rf /var/lib/latchkey/* /run/latchkey/* /tmp/latchkey-dist /tmp/vault-ca.pem",
      "rm -f /etc/ssh/ssh_host_* /etc/ssh/*-cert.pub /var/log/latchkey-ssh-helper.log",
      "cloud-init clean --logs --machine-id",
    ]
  }
}
