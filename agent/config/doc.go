// Package config reads latchkey-agent's configuration: Vault Agent's HCL
// (and JSON) format for the stanzas latchkey supports, plus a latchkey { }
// block for latchkey-only settings.
package config
