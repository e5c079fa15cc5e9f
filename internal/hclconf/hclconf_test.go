package hclconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parse reads src as the file name (its extension picks the syntax).
func parse(t *testing.T, name, src string) (map[string]*Attribute, error) {
	t.Helper()
	b, err := ParseBytes(name, []byte(src))
	if err != nil {
		return nil, err
	}
	attrs, diags := b.JustAttributes()
	return attrs, Err(diags)
}

func TestValues(t *testing.T) {
	src := `
s        = "text"
n_as_s   = 42
f_as_s   = 1.50
b        = true
b_str    = "false"
i        = 7
i_str    = "8"
i_exp    = 1e3
neg      = -4
d        = "90s"
d_num    = 30
list     = ["a", " b ", "", 3, false]
csv      = "10.0.0.0/8, 192.168.0.0/16 ,"
mode_oct = 0640
mode_str = "0600"
mode_dec = 416
null_s   = null
`
	for _, name := range []string{"v.hcl", "v.json"} {
		t.Run(name, func(t *testing.T) {
			body := src
			if strings.HasSuffix(name, ".json") {
				// The same keys as JSON (where 0640 cannot be written).
				body = `{"s": "text", "n_as_s": 42, "f_as_s": 1.50, "b": true, "b_str": "false", "i": 7, "i_str": "8", "i_exp": 1e3, "neg": -4,
"d": "90s", "d_num": 30, "list": ["a", " b ", "", 3, false], "csv": "10.0.0.0/8, 192.168.0.0/16 ,", "mode_oct": "0640", "mode_str": "0600",
"mode_dec": 416, "null_s": null}`
			}
			a, err := parse(t, name, body)
			if err != nil {
				t.Fatal(err)
			}
			check := func(key string, got, want any, diags Diagnostics) {
				t.Helper()
				if diags.HasErrors() {
					t.Errorf("%s: %v", key, Err(diags))
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", key, got, want)
				}
			}
			s, d := String(a["s"])
			check("s", s, "text", d)
			s, d = String(a["n_as_s"])
			check("n_as_s", s, "42", d)
			s, d = String(a["f_as_s"])
			check("f_as_s", s, "1.5", d)
			s, d = String(a["null_s"])
			check("null_s", s, "", d)
			b, d := Bool(a["b"])
			check("b", b, true, d)
			b, d = Bool(a["b_str"])
			check("b_str", b, false, d)
			i, d := Int(a["i"])
			check("i", i, int64(7), d)
			i, d = Int(a["i_str"])
			check("i_str", i, int64(8), d)
			i, d = Int(a["i_exp"])
			check("i_exp", i, int64(1000), d)
			i, d = Int(a["neg"])
			check("neg", i, int64(-4), d)
			f, d := Float(a["f_as_s"])
			check("f_as_s", f, 1.5, d)
			du, d := Duration(a["d"])
			check("d", du, 90*time.Second, d)
			du, d = Duration(a["d_num"])
			check("d_num", du, 30*time.Second, d)
			l, d := StringList(a["list"])
			check("list", l, []string{"a", "b", "3", "false"}, d)
			l, d = StringList(a["csv"])
			check("csv", l, []string{"10.0.0.0/8", "192.168.0.0/16"}, d)
			m, d := FileMode(a["mode_oct"])
			check("mode_oct", m, os.FileMode(0o640), d)
			m, d = FileMode(a["mode_str"])
			check("mode_str", m, os.FileMode(0o600), d)
			m, d = FileMode(a["mode_dec"])
			check("mode_dec", m, os.FileMode(0o640), d)
			if got := a["list"].Value.Go(); !reflect.DeepEqual(got, []any{"a", " b ", "", int64(3), false}) {
				t.Errorf("list as Go = %#v", got)
			}
			if got := a["f_as_s"].Value.Go(); got != 1.5 {
				t.Errorf("f_as_s as Go = %#v", got)
			}
		})
	}
}

func TestValueErrorsNameKeyAndPosition(t *testing.T) {
	tests := map[string]struct {
		src  string
		dec  func(a *Attribute) Diagnostics
		want string
	}{
		"bool":     {`k = "maybe"`, func(a *Attribute) Diagnostics { _, d := Bool(a); return d }, `v.hcl:1:5: invalid value for "k": want true or false`},
		"int":      {`k = 1.5`, func(a *Attribute) Diagnostics { _, d := Int(a); return d }, `v.hcl:1:5: invalid value for "k": want a whole number`},
		"int big":  {`k = 1e30`, func(a *Attribute) Diagnostics { _, d := Int(a); return d }, `v.hcl:1:5: invalid value for "k": want a whole number in range`},
		"duration": {`k = "soon"`, func(a *Attribute) Diagnostics { _, d := Duration(a); return d }, `v.hcl:1:5: invalid value for "k": want a duration such as "30s" or "5m"`},
		"negative": {`k = -1`, func(a *Attribute) Diagnostics { _, d := Duration(a); return d }, `v.hcl:1:5: invalid value for "k": want a non-negative duration`},
		"mode":     {`k = 0999`, func(a *Attribute) Diagnostics { _, d := FileMode(a); return d }, `v.hcl:1:5: invalid value for "k": want a file mode such as 0640`},
		"mode big": {`k = 017777`, func(a *Attribute) Diagnostics { _, d := FileMode(a); return d }, `v.hcl:1:5: invalid value for "k": want a file mode such as 0640`},
		"mode setuid": {`k = "4755"`, func(a *Attribute) Diagnostics { _, d := FileMode(a); return d },
			`v.hcl:1:5: invalid value for "k": want a file mode from 0000 to 0777, not 4755: setuid, setgid and sticky bits are not set on written files`},
		"mode sticky, decimal": {`k = 512`, func(a *Attribute) Diagnostics { _, d := FileMode(a); return d },
			`v.hcl:1:5: invalid value for "k": want a file mode from 0000 to 0777, not 1000: setuid, setgid and sticky bits are not set on written files`},
		"list": {`k = {a = 1}`, func(a *Attribute) Diagnostics { _, d := StringList(a); return d }, `v.hcl:1:5: invalid value for "k": want a list of strings or a comma-separated string`},
		"list null": {`k = ["a", null]`, func(a *Attribute) Diagnostics { _, d := StringList(a); return d },
			`v.hcl:1:5: invalid value for "k": want a list of strings`},
		"string": {`k = [1]`, func(a *Attribute) Diagnostics { _, d := String(a); return d }, `v.hcl:1:5: invalid value for "k": want a string`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, err := parse(t, "v.hcl", tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if err := Err(tc.dec(a["k"])); err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v\nwant    %s", err, tc.want)
			}
		})
	}
}

// What HCL would evaluate beyond a literal, and what is not HCL, is refused
// at file:line:col, naming the key.
func TestSyntaxErrorsNamePositionAndKey(t *testing.T) {
	tests := map[string]struct{ file, src, want string }{
		"template":         {"a.hcl", "x = 1\nk = \"a ${b}\"\n", `a.hcl:2:8: k: ${ starts a template, which the config does not evaluate (write $${ for the text ${)`},
		"directive":        {"a.hcl", "k = <<EOF\n%{ if x }\nEOF\n", `a.hcl:2:1: k: %{ starts a template`},
		"variable":         {"a.hcl", "b {\n  k = var.x\n}\n", `a.hcl:2:7: k: var is not a value`},
		"call":             {"a.hcl", "k = upper(\"x\")\n", `a.hcl:1:5: k: upper is not a value`},
		"operator":         {"a.hcl", "k = 1 + 2\n", `a.hcl:1:7: k: want a new line after the value, found '+' (the config holds literals only: no expressions)`},
		"unterminated":     {"a.hcl", "k = \"abc\n", `a.hcl:1:5: k: unterminated string`},
		"unclosed block":   {"a.hcl", "b {\n  k = 1\n", `a.hcl:1:3: unterminated block (no closing })`},
		"key twice":        {"a.hcl", "k = 1\nk = 2\n", `a.hcl:2:1: key "k" given twice (first at line 1)`},
		"object key twice": {"a.hcl", "k = {\n  a = 1\n  a = 2\n}\n", `a.hcl:3:3: k: key "a" given twice`},
		"one-line block":   {"a.hcl", "b { c { } }\n", `a.hcl:1:5: c: a block on one line holds at most one key = value, not a block`},
		"bad escape":       {"a.hcl", "k = \"\\q\"\n", `a.hcl:1:6: k: invalid escape sequence "\\q"`},
		"bad number":       {"a.hcl", "k = 10s\n", `a.hcl:1:5: k: malformed number`},
		"huge number":      {"a.hcl", "b {\n  k = 1e3000000\n}\n", `a.hcl:2:7: k: number out of range (beyond ±1e308, or nearer 0 than 1e-323)`},
		"tiny number":      {"a.hcl", "k = -1e-400\n", `a.hcl:1:5: k: number out of range`},
		"json huge number": {"a.json", "{\"b\": {\"k\": 2e400}}", `a.json:1:13: k: number out of range`},
		"not utf-8":        {"a.hcl", "k = \"\xff\"\n", `a.hcl:1:6: invalid UTF-8`},
		"json syntax":      {"a.json", "{\n  \"k\": [1,]\n}\n", `a.json:2:11: invalid JSON: want a value, found ']'`},
		"json not object":  {"a.json", "[1]", `a.json:1:1: a JSON config is one object of keys`},
		"json key twice":   {"a.json", "{\"b\": {\"k\": 1, \"k\": 2}}", `a.json:1:16: b: key "k" given twice`},
		"json trailing":    {"a.json", "{} {}", `a.json:1:4: invalid JSON: content after the object`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseBytes(tc.file, []byte(tc.src))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to start with %s", err, tc.want)
			}
			if _, ok := AsDiagnostics(err); !ok {
				t.Fatalf("error %T is not Diagnostics", err)
			}
		})
	}
}

// Blocks keep their labels and positions; object forms and JSON lists of
// objects are blocks too, in file order.
func TestSplit(t *testing.T) {
	src := "a = 1\nt {\n  x = 1\n}\nm \"l1\" l2 { y = 2 }\nt = { x = 2 }\n"
	b, err := ParseBytes("a.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	lv, diags := Split(b, "t", "m")
	if diags.HasErrors() {
		t.Fatal(Err(diags))
	}
	if len(lv.Attrs) != 1 || lv.Attrs["a"] == nil {
		t.Errorf("attrs = %v", lv.Attrs)
	}
	var got []string
	for _, blk := range lv.Blocks {
		got = append(got, blk.Type+strings.Join(blk.Labels, ",")+"@"+Pos(blk.DefRange))
	}
	if want := []string{"t@a.hcl:2:1", "ml1,l2@a.hcl:5:1", "t@a.hcl:6:1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("blocks = %v, want %v", got, want)
	}

	jb, err := ParseBytes("a.json", []byte("{\"t\": [{\"x\": 1}, {\"x\": 2}],\n \"a\": 1, \"//\": \"note\"}"))
	if err != nil {
		t.Fatal(err)
	}
	lv, diags = Split(jb, "t")
	if diags.HasErrors() || len(lv.Blocks) != 2 || len(lv.Attrs) != 1 || Pos(lv.Blocks[1].DefRange) != "a.json:1:2" {
		t.Errorf("json split: %v, %d blocks, attrs %v", Err(diags), len(lv.Blocks), lv.Attrs)
	}
}

func TestMissingFileIsNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.hcl")
	_, err := Parse(path)
	if err == nil || !strings.Contains(err.Error(), "read config "+path) || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("error = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
