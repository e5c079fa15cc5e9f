package main

import (
	"fmt"
	"io"
)

// runDoctor checks this host's set-up; see doctor.go's doctorUsage.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "latchkey-ssh-helper doctor: not yet")
	return exitInternal
}
