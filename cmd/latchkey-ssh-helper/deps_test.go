package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The helper runs once per login under pam_exec, so every package it links
// adds its inits to every login. zap (and with it net/http, compress/* and
// their inits) is the agent's; the helper logs through pam.Logger. regexp
// (with unicode's tables' inits) is out too: pam/install matches its two
// line shapes by hand. So are the HCL parsers, 1 and 2 (and go-cty): the
// helper reads its config itself (pam/configparse.go); only its tests
// compare it with them.
func TestHelperDoesNotLinkZapNetHTTPOrRegexp(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := regexp.MustCompile(`zap|^net/http$|^compress/|^regexp|^github.com/hashicorp/hcl|^github.com/zclconf/go-cty`)
	for _, p := range strings.Fields(string(out)) {
		if banned.MatchString(p) {
			t.Errorf("the helper links %s", p)
		}
	}
}
