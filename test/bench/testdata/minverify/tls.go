//go:build tls

package main

import (
	"crypto/tls"
	"os"
)

// linkTLS links crypto/tls (and with it crypto/x509), as a helper that can
// reach an https Vault must, without using it: its package initialisation
// and larger binary are what this variant measures.
func linkTLS() {
	if os.Getenv("MINVERIFY_NEVER") == "handshake" {
		_ = tls.Client(nil, &tls.Config{MinVersion: tls.VersionTLS12}).Handshake()
	}
}
