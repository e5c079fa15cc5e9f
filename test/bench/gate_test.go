package main

import (
	"os/exec"
	"strings"
	"testing"
)

// Every gated process gets its own stdin and arguments, reports its own
// exit code and output, and none of them holds the gate's or the ready
// pipe's descriptors once it runs the program.
func TestGatedStorm(t *testing.T) {
	tests := []struct {
		stdin, script, out string
		code               int
	}{
		{"one\n", `read -r x; echo "got $x"`, "got one", 0},
		{"two\n", `read -r x; echo "got $x"; exit 3`, "got two", 3},
		{"", `for f in 3 4; do [ -e /proc/$$/fd/$f ] && echo "fd $f open"; done; true`, "", 0},
		{"", `exit 1`, "", 1},
	}
	var cmds []*exec.Cmd
	for _, tc := range tests {
		c := exec.Command("sh", "-c", tc.script)
		c.Stdin = strings.NewReader(tc.stdin)
		cmds = append(cmds, c)
	}
	runs, total, err := gatedStorm(cmds)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		r := runs[i]
		if r.code != tc.code || strings.TrimSpace(r.out) != tc.out {
			t.Errorf("%q: exit %d, output %q; want exit %d, output %q", tc.script, r.code, r.out, tc.code, tc.out)
		}
		if r.wall <= 0 || r.wall > total {
			t.Errorf("%q: wall %v outside (0, total %v]", tc.script, r.wall, total)
		}
	}
}
