package hcloracle

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// parseFlat writes src to a file named name and decodes it as a flat body.
func parseFlat(t *testing.T, name, src string, keys ...string) (*hclparse.Parser, map[string]*hcl.Attribute, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p := hclparse.NewParser()
	f, err := Parse(p, path)
	if err != nil {
		return p, nil, err
	}
	attrs, diags := Flat(f.Body, keys...)
	return p, attrs, Err(diags)
}

func TestErrorsNameFileLineColumnAndKey(t *testing.T) {
	tests := map[string]struct {
		file, src string
		want      string // after "<dir>/"
	}{
		"unknown key": {
			file: "helper.hcl",
			src:  "vault_addr = \"https://v:8200\"\n  bogus_key = 1\n",
			want: `helper.hcl:2:3: unknown key "bogus_key"`,
		},
		"syntax error": {
			file: "helper.hcl",
			src:  "vault_addr = \"https://v:8200\"\nallowed_roles = \n",
			want: "helper.hcl:2:",
		},
		"repeated key": {
			file: "helper.hcl",
			src:  "vault_addr = \"a\"\nvault_addr = \"b\"\n",
			want: `helper.hcl:2:1: Attribute redefined: The argument "vault_addr" was already set`,
		},
		"block in a flat file": {
			file: "helper.hcl",
			src:  "vault_addr = \"a\"\nvault {\n}\n",
			want: "helper.hcl:2:1: Unexpected \"vault\" block",
		},
		"json unknown key": {
			file: "helper.json",
			src:  "{\n  \"vault_addr\": \"a\",\n  \"nope\": true\n}\n",
			want: `helper.json:3:3: unknown key "nope"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := parseFlat(t, tc.file, tc.src, "vault_addr")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tc.want)
			}
			if _, ok := AsDiagnostics(err); !ok {
				t.Fatalf("error %T is not Diagnostics", err)
			}
		})
	}
}

func TestMissingFileIsNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.hcl")
	_, err := Parse(hclparse.NewParser(), path)
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

func TestValues(t *testing.T) {
	src := `
s        = "text"
n_as_s   = 42
b        = true
b_str    = "false"
i        = 7
i_str    = "8"
d        = "90s"
d_num    = 30
list     = ["a", " b ", ""]
csv      = "10.0.0.0/8, 192.168.0.0/16 ,"
mode_oct = 0640
mode_str = "0600"
mode_dec = 416
`
	keys := []string{"s", "n_as_s", "b", "b_str", "i", "i_str", "d", "d_num", "list", "csv", "mode_oct", "mode_str", "mode_dec"}
	p, a, err := parseFlat(t, "v.hcl", src, keys...)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any, diags hcl.Diagnostics) {
		t.Helper()
		if diags.HasErrors() {
			t.Errorf("%s: %v", name, Err(diags))
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	s, d := String(a["s"])
	check("s", s, "text", d)
	s, d = String(a["n_as_s"])
	check("n_as_s", s, "42", d)
	b, d := Bool(a["b"])
	check("b", b, true, d)
	b, d = Bool(a["b_str"])
	check("b_str", b, false, d)
	i, d := Int(a["i"])
	check("i", i, int64(7), d)
	i, d = Int(a["i_str"])
	check("i_str", i, int64(8), d)
	du, d := Duration(a["d"])
	check("d", du, 90*time.Second, d)
	du, d = Duration(a["d_num"])
	check("d_num", du, 30*time.Second, d)
	l, d := StringList(a["list"])
	check("list", l, []string{"a", "b"}, d)
	l, d = StringList(a["csv"])
	check("csv", l, []string{"10.0.0.0/8", "192.168.0.0/16"}, d)
	m, d := FileMode(p, a["mode_oct"])
	check("mode_oct", m, os.FileMode(0o640), d)
	m, d = FileMode(p, a["mode_str"])
	check("mode_str", m, os.FileMode(0o600), d)
	m, d = FileMode(p, a["mode_dec"])
	check("mode_dec", m, os.FileMode(0o640), d)
}

func TestValueErrorsNameKeyAndPosition(t *testing.T) {
	tests := map[string]struct {
		src  string
		dec  func(p *hclparse.Parser, a *hcl.Attribute) hcl.Diagnostics
		want string
	}{
		"bool": {`k = "maybe"`, func(_ *hclparse.Parser, a *hcl.Attribute) hcl.Diagnostics { _, d := Bool(a); return d },
			`v.hcl:1:5: invalid value for "k": want true or false`},
		"int": {`k = 1.5`, func(_ *hclparse.Parser, a *hcl.Attribute) hcl.Diagnostics { _, d := Int(a); return d },
			`v.hcl:1:5: invalid value for "k": want a whole number`},
		"duration": {`k = "soon"`, func(_ *hclparse.Parser, a *hcl.Attribute) hcl.Diagnostics { _, d := Duration(a); return d },
			`v.hcl:1:5: invalid value for "k": want a duration`},
		"mode": {`k = 0999`, func(p *hclparse.Parser, a *hcl.Attribute) hcl.Diagnostics { _, d := FileMode(p, a); return d },
			`v.hcl:1:5: invalid value for "k": want a file mode`},
		"list": {`k = {a = 1}`, func(_ *hclparse.Parser, a *hcl.Attribute) hcl.Diagnostics { _, d := StringList(a); return d },
			`v.hcl:1:5: invalid value for "k": want a list`},
		"variable": {`k = var.x`, func(_ *hclparse.Parser, a *hcl.Attribute) hcl.Diagnostics { _, d := String(a); return d },
			`v.hcl:1:5: Variables not allowed`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, a, err := parseFlat(t, "v.hcl", tc.src, "k")
			if err != nil {
				t.Fatal(err)
			}
			err = Err(tc.dec(p, a["k"]))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// isOctalLiteral is the regexp it replaced, written out.
func TestIsOctalLiteralMatchesItsRegexp(t *testing.T) {
	re := regexp.MustCompile(`^0[0-7]+$`)
	for _, s := range []string{"", "0", "00", "0640", "0600", "0755", "0o640", "640", "0648", "08", "0x1f", "0640\n", " 0640", "07777777777", "0-1"} {
		if got, want := isOctalLiteral(s), re.MatchString(s); got != want {
			t.Errorf("isOctalLiteral(%q) = %v, regexp says %v", s, got, want)
		}
	}
}
