package funcs

import (
	"io"
	"strings"
	"testing"
	gotemplate "text/template"
	"time"
)

// A template function's error never carries the argument's value, plain or
// transformed, one line or many: the attack is a template that feeds a
// secret to a function that fails on it, so that the error (logged to
// stderr and log_file) discloses the secret.
func TestErrorsCarryNoValue(t *testing.T) {
	const secret = "APIKEY-s3cr3t-Value"
	const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
	tests := map[string]struct {
		tmpl  string
		value string
		// want is in the error: the function's name, the reason.
		want string
	}{
		"parseInt":               {`{{ parseInt .V }}`, secret, "parseInt: ParseInt: invalid syntax"},
		"parseInt of toUpper":    {`{{ .V | toUpper | parseInt }}`, secret, "parseInt"},
		"parseInt of trimPrefix": {`{{ .V | trimPrefix "APIKEY-" | parseInt }}`, secret, "parseInt"},
		"parseFloat":             {`{{ parseFloat .V }}`, secret, "parseFloat"},
		"parseBool":              {`{{ parseBool .V }}`, secret, "parseBool"},
		"parseUint":              {`{{ parseUint .V }}`, secret, "parseUint"},
		"parseInt of a PEM":      {`{{ parseInt .V }}`, pem, "parseInt"},
		"parseJSON":              {`{{ parseJSON .V }}`, secret, "invalid JSON at offset"},
		"parseYAML":              {`{{ parseYAML .V }}`, "a: [" + secret, "parseYAML"},
		"base64Decode":           {`{{ base64Decode .V }}`, secret, "illegal base64 data"},
		"sprig_b64dec ok":        {`{{ sprig_fail .V }}`, secret, "sprig_fail"},
		"sprig_semver":           {`{{ sprig_semver .V }}`, secret, "sprig_semver"},
		"explodeMap":             {`{{ explodeMap (dict .V "x" (printf "%s/y" .V) "z") }}`, secret, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fm := Helpers(time.Now)
			fm["dict"] = func(kv ...string) map[string]any {
				m := map[string]any{}
				for i := 0; i+1 < len(kv); i += 2 {
					m[kv[i]] = kv[i+1]
				}
				return m
			}
			tpl, err := gotemplate.New("t.tmpl").Funcs(fm).Parse(tc.tmpl)
			if err != nil {
				t.Skipf("not in this build: %v", err)
			}
			err = tpl.Execute(io.Discard, map[string]string{"V": tc.value})
			if err == nil {
				if tc.want == "" {
					return
				}
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, bad := range []string{secret, strings.ToUpper(secret), "s3cr3t", "MIIEvQ", "BEGIN PRIVATE"} {
				if strings.Contains(msg, bad) {
					t.Errorf("error holds %q: %s", bad, msg)
				}
			}
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "t.tmpl:1:") {
				t.Errorf("error %q, want it to name %q and the template position", msg, tc.want)
			}
		})
	}
}

// Errors that hold no value keep their text.
func TestSafeErrorsKept(t *testing.T) {
	tpl := gotemplate.Must(gotemplate.New("t").Funcs(Helpers(time.Now)).Parse(`{{ indent -1 "x" }}`))
	err := tpl.Execute(io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "indent value must be a positive integer") {
		t.Fatalf("error = %v", err)
	}
}
