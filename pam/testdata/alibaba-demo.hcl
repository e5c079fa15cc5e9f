vault_addr = "http://127.0.0.1:8200"
ssh_mount_point = "ssh-otp"
namespace = ""
tls_skip_verify = true
allowed_roles = "*"
allowed_cidr_list = "0.0.0.0/0"
