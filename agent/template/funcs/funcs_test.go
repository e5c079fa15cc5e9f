package funcs

import (
	"bytes"
	"testing"
	gotemplate "text/template"
	"time"
)

// TestHelpers checks consul-template's helper semantics that the
// differential test (test/e2e/differential) does not reach: result types of
// mixed arithmetic, empty-string parsing, exact-type `in`.
func TestHelpers(t *testing.T) {
	// A host in another zone: timestamp still prints UTC.
	now := func() time.Time { return time.Date(2026, 1, 2, 5, 4, 5, 0, time.FixedZone("X", 2*3600)) }
	tests := []struct {
		name, tmpl, want string
		data             any
	}{
		{"int+uint is int64", `{{ printf "%T" (add .U .I) }}`, "int64", map[string]any{"U": uint(2), "I": 3}},
		{"uint+uint is uint64", `{{ printf "%T" (add .U .U) }}`, "uint64", map[string]any{"U": uint(2)}},
		{"int+float is float64", `{{ printf "%T %v" (add 1 1.5) (add 1 1.5) }}`, "float64 2.5", nil},
		{"subtract is a-b piped", `{{ 10 | subtract 4 }}`, "6", nil},
		{"integer divide", `{{ 7 | divide 2 }} {{ 7.0 | divide 2 }}`, "3 3.5", nil},
		{"minimum keeps the winner's type", `{{ printf "%T" (minimum 1 2.5) }} {{ printf "%T" (minimum 3 2.5) }}`, "int64 float64", nil},
		{"maximum tie returns b", `{{ printf "%T" (maximum 2.0 2) }}`, "float64", nil},
		{"modulo refuses floats", `{{ modulo 2.0 3 }}`, "ERR", nil},
		{"empty parses to zero", `{{ parseInt "" }} {{ parseBool "" }} {{ parseFloat "" }} {{ parseUint "" }}`, "0 false 0 0", nil},
		{"bad int", `{{ parseInt "x" }}`, "ERR", nil},
		{"in needs the same type", `{{ in .L "a" }} {{ in .L 1 }} {{ "abc" | contains "b" }}`, "true false true", map[string]any{"L": []any{"a", "b"}}},
		{"containsAny/NotAll", `{{ containsAny .V .L }} {{ containsNotAll .V .L }}`, "true true", map[string]any{"L": []any{"a"}, "V": []any{"a", "z"}}},
		{"split of blank is empty", `{{ len ("  " | split ",") }}`, "0", nil},
		{"indent keeps blank lines", `{{ "a\n\nb\n" | indent 2 }}`, "  a\n\n  b\n", nil},
		{"timestamp", `{{ timestamp }} {{ timestamp "unix" }} {{ timestamp "2006" }}`, "2026-01-02T03:04:05Z 1767323045 2026", nil},
		{"toJSON trims", `{{ toJSON .M }} {{ toUnescapedJSON .M }}`, `{"a":"\u003cb\u003e"} {"a":"<b>"}`, map[string]any{"M": map[string]any{"a": "<b>"}}},
		{"toLower", `{{ "MiXeD Case-42 ÄÖ" | toLower }} {{ toLower "" }}`, "mixed case-42 äö ", nil},
		{"toLower then toUpper", `{{ "abC" | toLower | toUpper }}`, "ABC", nil},
		{"toTitle keeps case", `{{ "hello wORLD" | toTitle }}`, "Hello WORLD", nil},
		{"splitToMap skips pairs without sep", `{{ "a=1,b" | splitToMap "," "=" }}`, "map[a:1]", nil},
		{"sprig prefixed", `{{ sprig_upper "x" }}`, "X", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := gotemplate.New("t").Funcs(Helpers(now)).Parse(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			err = tp.Execute(&b, tt.data)
			got := b.String()
			if err != nil {
				got = "ERR"
			}
			if got != tt.want {
				t.Errorf("got %q (err %v), want %q", got, err, tt.want)
			}
		})
	}
}
