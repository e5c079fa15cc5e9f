auto_auth {
  method {
    type = "approle"
    config {
      role_id_file_path = "/etc/latchkey/role-id"
      secret_id_file_path = "/etc/latchkey/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
  sink {
    type = "file"
    wrap_ttl = "5m"
    config {
      path = "/run/latchkey/token"
      mode = 0600
      owner = "app"
      group = 1001
    }
  }
}
latchkey {
  state_dir = "/tmp/state"
}
