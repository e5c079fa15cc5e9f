# latchkey-agent configuration: Vault Agent's format (see README.md,
# "latchkey-agent"). Check it with: latchkey-agent validate -config /etc/latchkey/agent.hcl

vault {
  address = "https://vault.example.com:8200"
  # ca_cert = "/etc/latchkey/vault-ca.pem"
  retry {
    num_retries = 5
  }
}

auto_auth {
  # AWS EC2: the instance's signed identity document; the nonce is kept in
  # /var/lib/latchkey, bound to the instance id.
  method "aws" {
    mount_path = "auth/aws"
    config = {
      type = "ec2"
      role = "web"
    }
  }

  # Alibaba Cloud ECS (RAM role):
  # method "alicloud" {
  #   config = {
  #     role   = "web"
  #     region = "cn-hangzhou"
  #   }
  # }

  # Hosts outside the clouds:
  # method "approle" {
  #   config = {
  #     role_id_file_path   = "/etc/latchkey/role-id"
  #     secret_id_file_path = "/etc/latchkey/secret-id"
  #   }
  # }

  sink "file" {
    config = {
      path  = "/run/latchkey/token"
      mode  = 0640
      # group = "app"
    }
  }
}

# template {
#   source      = "/etc/latchkey/templates/app.env.tmpl"
#   destination = "/etc/app/app.env"
#   perms       = 0640
#   command     = "systemctl try-reload-or-restart app.service"
# }

latchkey {
  state_dir = "/var/lib/latchkey"
  # A fleet launched at once: wait a random time up to this before the
  # first login, so that Vault does not see every instance in one second.
  # login_splay = "15s"
}
