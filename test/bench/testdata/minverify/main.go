// Command minverify is the least a fresh process can do to ask Vault to
// verify an SSH OTP: read the password from stdin, one raw HTTP/1.1 POST to
// <addr>/v1/<mount>/verify over a new TCP connection, exit 0 on a 200. No
// config, no checks, no audit, no logging. The benchmark builds it in the
// run and alternates it with both helpers: its median is what any Go helper
// pays on this machine, beside which the helper goals can be read.
//
// Build tags pick the variant: tls links crypto/tls (as a helper that can
// reach an https Vault must) without using it; raw talks to the socket with
// bare syscalls instead of package net (no netpoller, no goroutine parked
// on a read), the least a Go process can do for the round trip.
package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		os.Stderr.WriteString("usage: minverify host:port mount\n")
		os.Exit(2)
	}
	linkTLS()
	in, err := io.ReadAll(io.LimitReader(os.Stdin, 512))
	if err != nil {
		os.Exit(2)
	}
	otp := strings.TrimRight(string(in), "\x00\n")
	body := `{"otp":"` + otp + `"}`
	req := "POST /v1/" + os.Args[2] + "/verify HTTP/1.1\r\nHost: " + os.Args[1] +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) +
		"\r\nConnection: close\r\n\r\n" + body
	resp, err := roundTrip(os.Args[1], []byte(req))
	if err != nil {
		os.Exit(2)
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 ")) {
		os.Exit(1)
	}
}
