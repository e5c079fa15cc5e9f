package hcloracle

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// decodeOurs is every typed decoder's answer for each key: its value, or
// "error".
func decodeOurs(src []byte) (map[string][]string, error) {
	b, err := hclconf.ParseBytes("v.hcl", src)
	if err != nil {
		return nil, err
	}
	attrs, diags := b.JustAttributes()
	if err := hclconf.Err(diags); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for k, a := range attrs {
		r := func(v any, d hclconf.Diagnostics) string {
			if d.HasErrors() {
				return "error"
			}
			return fmt.Sprintf("%#v", v)
		}
		s, d1 := hclconf.String(a)
		bo, d2 := hclconf.Bool(a)
		i, d3 := hclconf.Int(a)
		f, d4 := hclconf.Float(a)
		du, d5 := hclconf.Duration(a)
		l, d6 := hclconf.StringList(a)
		m, d7 := hclconf.FileMode(a)
		out[k] = []string{r(s, d1), r(bo, d2), r(i, d3), r(f, d4), r(du, d5), r(l, d6), r(m, d7)}
	}
	return out, nil
}

func decodeOracle(src []byte) (map[string][]string, error) {
	p := hclparse.NewParser()
	f, err := ParseBytes(p, "v.hcl", src)
	if err != nil {
		return nil, err
	}
	attrs, diags := f.Body.JustAttributes()
	if err := Err(diags); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for k, a := range attrs {
		if _, d := Value(a); d.HasErrors() {
			return nil, Err(d)
		}
		r := func(v any, d interface{ HasErrors() bool }) string {
			if d.HasErrors() {
				return "error"
			}
			return fmt.Sprintf("%#v", v)
		}
		s, d1 := String(a)
		bo, d2 := Bool(a)
		i, d3 := Int(a)
		fl, d4 := Float(a)
		du, d5 := Duration(a)
		l, d6 := StringList(a)
		m, d7 := FileMode(p, a)
		out[k] = []string{r(s, d1), r(bo, d2), r(i, d3), r(fl, d4), r(du, d5), r(l, d6), r(m, d7)}
	}
	return out, nil
}

// internal/hclconf's typed decoders answer as these (go-cty's) did, for
// every value the reader accepts.
func FuzzDecodersAgree(f *testing.F) {
	for _, s := range []string{`k = "text"`, "k = 42\nj = 1.50", `k = "false"`, `k = "8"`, "k = 1e3", "k = -4", `k = "90s"`,
		`k = ["a", " b ", "", 3, false]`, `k = "10.0.0.0/8, 192.168.0.0/16 ,"`, "k = 0640", `k = "0600"`, "k = 416", "k = null",
		"k = 0999", "k = 1e30", `k = {a = 1}`, `k = ["a", null]`, "k = 017777", `k = " 12 "`, `k = "1e2"`, `k = "0x10"`, `k = "Inf"`,
		"k = <<EOF\n5m\nEOF\n", "k = 0.1", "k = -0", `k = "-1.5s"`, "k = true"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		ours, err := decodeOurs([]byte(src))
		if err != nil {
			return
		}
		oracle, err := decodeOracle([]byte(src))
		if err != nil {
			t.Fatalf("ours reads what hcl/v2 refuses: %v\n%q", err, src)
		}
		if !reflect.DeepEqual(ours, oracle) {
			t.Fatalf("decoders differ for %q:\nours:   %v\nhcl/v2: %v", src, ours, oracle)
		}
	})
}
