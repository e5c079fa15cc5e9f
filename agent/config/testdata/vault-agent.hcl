# A Vault Agent config as teams write them (from Vault's docs and real
# deployments): it must parse unchanged.
pid_file = "/run/vault-agent/pidfile"
exit_after_auth = false
log_level = "info"

vault {
  address = "https://vault.example.com:8200"
  ca_cert = "/etc/vault/ca.pem"
  tls_skip_verify = false
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "aws" {
    mount_path = "auth/aws-subaccount"
    namespace  = "team-a"
    config = {
      type = "ec2"
      role = "web"
    }
  }

  sink "file" {
    config = {
      path = "/run/vault-agent/token"
      mode = 0640
    }
  }

  sink {
    type     = "file"
    wrap_ttl = "5m"
    config {
      path  = "/run/vault-agent/wrapped-token"
      owner = "www-data"
      group = "www-data"
    }
  }
}

template_config {
  exit_on_retry_failure         = true
  static_secret_render_interval = "10m"
}

template {
  source      = "/etc/vault/templates/app.ctmpl"
  destination = "/etc/app/config.yml"
  perms       = 0600
  command     = "systemctl reload app"
}

template {
  contents = <<EOT
{{ with secret "secret/data/db" }}{{ .Data.data.password }}{{ end }}
EOT
  destination          = "/etc/app/db-password"
  error_on_missing_key = true
  exec {
    command = ["/usr/bin/touch", "/tmp/reloaded"]
    timeout = "10s"
  }
  wait {
    min = "2s"
    max = "10s"
  }
}
