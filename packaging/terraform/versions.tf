# What latchkey expects in Vault, as code: apply it with the Vault
# provider (VAULT_ADDR and VAULT_TOKEN of an operator), then point the
# helper's and the agent's configs at the names in outputs.tf.
# Kept in step with test/demo (test/packaging/terraform_test.go checks it).
terraform {
  required_version = ">= 1.3"
  required_providers {
    vault = {
      source  = "hashicorp/vault"
      version = ">= 3.20"
    }
  }
}
