package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// systemd must restart the agent after a crash — a Go panic and the
// watchdog's SIGABRT both exit 2 — and not loop on what needs a human (a
// usage or config error).
func TestUnitRestartPolicyMatchesExitCodes(t *testing.T) {
	unit, err := os.ReadFile("../../systemd/latchkey-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	var prevent []int
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "RestartPreventExitStatus="); ok {
			for _, f := range strings.Fields(v) {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("RestartPreventExitStatus: %q", f)
				}
				prevent = append(prevent, n)
			}
		}
	}
	for _, code := range []int{exitUsage, exitConfig} {
		if !slices.Contains(prevent, code) {
			t.Errorf("RestartPreventExitStatus=%v lacks %d: systemd would restart a config it cannot run", prevent, code)
		}
	}
	const goPanic = 2
	if slices.Contains(prevent, goPanic) || exitUsage == goPanic {
		t.Errorf("exit code %d (a panic, a watchdog abort) must restart the agent; RestartPreventExitStatus=%v, usage %d", goPanic, prevent, exitUsage)
	}
}
