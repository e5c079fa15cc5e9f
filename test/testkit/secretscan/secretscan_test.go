package secretscan

import (
	"strings"
	"testing"
)

func reset() {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.secrets, state.logs, state.scanned, state.hits = nil, nil, 0, nil
}

// Finish fails the package for a captured log holding a remembered secret,
// names the log and the secret's length only, and ignores strings too
// short to be secrets.
func TestFinish(t *testing.T) {
	const token = "hvs.CAESIJ3x-not-a-real-token"
	tests := map[string]struct {
		remember []string
		log      string
		code     int
		want     string
	}{
		"clean log":               {remember: []string{token}, log: "token renewed, ttl 8s", code: 0, want: "1 logs scanned for the 1 secrets issued (tokens, secret ids, OTPs, values): 0 found"},
		"token in the log":        {remember: []string{token}, log: "renewed " + token, code: 1, want: "a test's log holds a secret the tests issued (29 bytes long)"},
		"short strings ignored":   {remember: []string{"v1", "web", ""}, log: "v1 web", code: 0, want: "for the 0 secrets"},
		"no log, nothing printed": {remember: []string{token}, code: 0},
		"large value cut short":   {remember: []string{strings.Repeat("big-secret-", 1000)}, log: "value " + strings.Repeat("big-secret-", 20) + "...", code: 1, want: "(128 bytes long)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reset()
			defer reset()
			Remember(tc.remember...)
			if tc.log != "" {
				Capture("a test's log", func() string { return tc.log })
			}
			var out strings.Builder
			if code := Finish(0, &out); code != tc.code {
				t.Errorf("code %d, want %d\n%s", code, tc.code, out.String())
			}
			if !strings.Contains(out.String(), tc.want) || (tc.log == "" && out.Len() > 0) {
				t.Errorf("output %q, want %q", out.String(), tc.want)
			}
			if strings.Contains(out.String(), token) {
				t.Error("the report holds the secret")
			}
		})
	}
}
