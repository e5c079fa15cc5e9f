package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

// doctor reads the helper's arguments on the PAM line as the helper does:
// every line on which the built helper refuses each login with exit 2 (a
// version request, help, an unknown flag, a stray argument, a bad
// -log-level, -verify-only) doctor fails, naming why, and it passes the
// lines the helper runs with. Before, it failed only -verify-only, and a
// PAM line "... -config=X version" locked everyone out with every doctor
// line OK.
func TestBinaryDoctorReadsThePAMLineAsTheHelper(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"web\"\naudit = \"off\"\n", srv.Addr))
	tests := map[string]struct {
		extra      string
		wantDoctor string // in doctor's "PAM line" lines
	}{
		"plain":           {"", "OK   PAM line: "},
		"log level":       {"-log-level=debug", "OK   PAM line: "},
		"version":         {"version", "FAIL PAM line: FILE:1: version on the PAM line asks only for the version"},
		"-v":              {"-v", "FAIL PAM line: FILE:1: -v on the PAM line asks only for the version"},
		"-version":        {"-version", "asks only for the version"},
		"--version":       {"--version", "asks only for the version"},
		"-h":              {"-h", "the helper cannot read its arguments (flag: help requested)"},
		"unknown flag":    {"-bogus", "the helper cannot read its arguments (flag provided but not defined: -bogus)"},
		"stray argument":  {"stray", `the helper cannot read its arguments (unexpected argument "stray")`},
		"bad log level":   {"-log-level=loud", "FAIL PAM line: FILE:1: -log-level: "},
		"-verify-only":    {"-verify-only", "FAIL PAM line: FILE:1: -verify-only on the PAM line"},
		"-config as flag": {"-config", "the helper cannot read its arguments (flag needs an argument: -config)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"-config=" + cfg, "-dev"}, strings.Fields(tc.extra)...)
			pamFile := filepath.Join(t.TempDir(), "sshd")
			testkit.WriteFile(t, pamFile, "auth requisite pam_exec.so quiet expose_authtok "+helper+" "+strings.Join(args, " ")+"\nauth optional pam_permit.so\n")

			// The helper as pam_exec runs it from that line.
			code, loginOut := runHelper(t, cfg, []string{"PAM_TYPE=auth", "PAM_USER=alice", "PAM_SERVICE=sshd"}, "not-an-otp\n", args[1:]...)

			doctor := boundedCommand(t, helper, "doctor", "-pam-file", pamFile, "-sshd", "/nonexistent/sshd")
			doctor.Env = []string{}
			dcode, doctorOut := runCommand(t, doctor)
			var lines []string
			for _, l := range strings.Split(doctorOut, "\n") {
				if strings.Contains(l, " PAM line: ") {
					lines = append(lines, strings.ReplaceAll(l, pamFile, "FILE"))
				}
			}
			got := strings.Join(lines, "\n")
			if !strings.Contains(got, tc.wantDoctor) {
				t.Errorf("doctor's PAM line lines:\n%s\nwant %q (all of its output:\n%s)", got, tc.wantDoctor, doctorOut)
			}
			// The two agree: exit 2 at every login if and only if doctor fails the line.
			if refused, failed := code == exitUsage, strings.Contains(got, "FAIL"); refused != failed {
				t.Errorf("the helper exits %d on that line (output: %s) but doctor's PAM line lines are:\n%s", code, loginOut, got)
			}
			if strings.Contains(got, "FAIL") && dcode != exitDenied {
				t.Errorf("doctor failed the PAM line but exited %d, want %d", dcode, exitDenied)
			}
		})
	}
}
