package auth

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// Settings' errors start with the key's own file:line:col, the config
// block's when the key is missing, the stanza's when there is no config
// block, and file:line when only those are known.
func TestSettingsErrorPositions(t *testing.T) {
	at := func(line, col, byte int) hclconf.Range {
		return hclconf.Range{Filename: "a.hcl", Start: hclconf.Position{Line: line, Column: col, Byte: byte}}
	}
	full := MethodConfig{Type: "approle", File: "a.hcl", Line: 2, Range: at(2, 3, 10), ConfigRange: at(4, 5, 40)}
	noConfig := MethodConfig{Type: "approle", File: "a.hcl", Line: 2, Range: at(2, 3, 10)}
	lineOnly := MethodConfig{Type: "approle", File: "a.hcl", Line: 2}
	with := func(base MethodConfig, cfg map[string]any, keys map[string]hclconf.Range) MethodConfig {
		base.Config, base.Keys = cfg, keys
		return base
	}
	read := func(s *Settings) {
		s.Required("path")
		s.Bool("remove", true)
		s.Duration("poll", time.Minute)
	}
	tests := map[string]struct {
		cfg  MethodConfig
		want string
	}{
		"unknown key": {with(full, map[string]any{"path": "/p", "bogus": 1}, map[string]hclconf.Range{"path": at(6, 7, 60), "bogus": at(5, 7, 50)}),
			`a.hcl:5:7: method "approle": unknown config key "bogus"`},
		"unknown keys, first in the file": {with(full, map[string]any{"path": "/p", "zz": 1, "aa": 2}, map[string]hclconf.Range{"zz": at(5, 7, 50), "aa": at(6, 7, 60)}),
			`a.hcl:5:7: method "approle": unknown config key "zz"`},
		"wrong type": {with(full, map[string]any{"path": []any{"x"}}, map[string]hclconf.Range{"path": at(5, 7, 50)}),
			`a.hcl:5:7: method "approle": config key "path": want a string`},
		"wrong bool": {with(full, map[string]any{"path": "/p", "remove": "maybe"}, map[string]hclconf.Range{"path": at(5, 7, 50), "remove": at(6, 7, 60)}),
			`a.hcl:6:7: method "approle": config key "remove": want true or false`},
		"wrong duration": {with(full, map[string]any{"path": "/p", "poll": "often"}, map[string]hclconf.Range{"path": at(5, 7, 50), "poll": at(6, 7, 60)}),
			`a.hcl:6:7: method "approle": config key "poll": want a duration such as "30s"`},
		"missing, config block": {with(full, map[string]any{}, map[string]hclconf.Range{}),
			`a.hcl:4:5: method "approle": config key "path" is required`},
		"missing, no config block": {with(noConfig, nil, nil),
			`a.hcl:2:3: method "approle": config key "path" is required`},
		"missing, line only": {with(lineOnly, nil, nil),
			`a.hcl:2: method "approle": config key "path" is required`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewSettings(tc.cfg)
			read(s)
			err := s.Err()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v\nwant    %s", err, tc.want)
			}
		})
	}
	cfg := with(full, map[string]any{"path": "/p"}, map[string]hclconf.Range{"path": at(5, 7, 50)})
	if got, want := NewSettings(cfg).Errorf("path", "%q is bad", "/p").Error(), `a.hcl:5:7: method "approle": config key "path": "/p" is bad`; got != want {
		t.Errorf("Errorf = %s, want %s", got, want)
	}
}
