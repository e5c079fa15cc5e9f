# A Vault Agent config as teams write it (HCL 1 spellings).
pid_file = "/run/vault-agent.pid"
exit_after_auth = false
log_level = "info"

vault {
  address = "https://vault.example.com:8200"
  ca_cert = "/etc/vault/ca.pem"
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "aws" {
    mount_path = "auth/aws-ec2"
    config = {
      type = "ec2"
      role = "web"
    }
  }

  sink "file" {
    config = {
      path = "/run/vault/token"
      mode = 0640
    }
  }
}

template_config {
  static_secret_render_interval = "10m"
  exit_on_retry_failure = true
}

template {
  source      = "/etc/vault/templates/app.ctmpl"
  destination = "/etc/app/config.yml"
  perms       = 0600
  command     = "systemctl reload app"
}

template {
  contents    = "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}"
  destination = "/etc/app/password"
  exec {
    command = ["/usr/bin/touch", "/tmp/x"]
    timeout = "5s"
  }
  wait {
    min = "2s"
    max = "10s"
  }
}
