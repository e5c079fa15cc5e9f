package template

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/test/testkit"
)

// A syntax error names the file (and line) holding the text, never the
// destination as if it were the template.
func TestSyntaxErrorNamesTheSource(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "app.tmpl")
	testkit.WriteFile(t, src, "a\nb\nc\n{{ if")
	dest := filepath.Join(dir, "app.env")
	tests := map[string]struct {
		tmpl config.Template
		want string
	}{
		"source":   {config.Template{Source: src, Destination: dest}, "template: " + src + ":4: "},
		"contents": {config.Template{Contents: "{{ if", Destination: dest, Range: hclconf.Range{Filename: "/etc/agent.hcl", Start: hclconf.Position{Line: 7, Column: 1}}}, "template: contents at /etc/agent.hcl:7:1:1: "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.tmpl.LeftDelim, tc.tmpl.RightDelim = "{{", "}}"
			_, err := newUnit(tc.tmpl)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "template: "+dest) {
				t.Errorf("the error names the destination as the template: %v", err)
			}
		})
	}
}
