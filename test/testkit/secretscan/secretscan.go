// Package secretscan is the test suite's check that no log holds a secret:
// the kits (test/testkit, test/vaulttest) remember every token, secret id,
// OTP and secret value they issue or see, and every log they capture
// (observed loggers, the output of binaries they start); each package's
// TestMain (vaulttest.Run does it) scans the captured logs for every
// remembered secret when its tests are done, and a hit fails the package.
// It depends on nothing of the kits, so that both can use it.
package secretscan

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// minLen is the shortest string remembered: shorter ones ("v1", "web")
// would match ordinary words. Every real token, secret id and OTP is far
// longer; a test's secret value should be too.
const minLen = 8

var state struct {
	mu      sync.Mutex
	secrets map[string]bool
	logs    []captured
	scanned int
	hits    []string
}

type captured struct {
	name string
	text func() string
}

// maxLen bounds what is kept of one secret: its first 128 bytes, which a
// log that quotes the secret (whole or cut short) holds, so a large value
// (a private key, a 128 KiB template secret) costs no more than a token.
const maxLen = 128

// Remember adds secrets to what no log may hold ("" and strings shorter
// than 8 bytes are ignored; of a longer one than 128, its start is kept).
func Remember(secrets ...string) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.secrets == nil {
		state.secrets = map[string]bool{}
	}
	for _, s := range secrets {
		if len(s) > maxLen {
			s = s[:maxLen]
		}
		if len(s) >= minLen {
			state.secrets[s] = true
		}
	}
}

// Capture registers a log (text returns its content then) to be scanned
// by Finish, against the secrets remembered by then.
func Capture(name string, text func() string) {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.logs = append(state.logs, captured{name, text})
}

// Scan checks text now and fails t for each remembered secret it holds
// (saying how long it is, never what it is). It returns how many secrets
// it looked for.
func Scan(t testing.TB, name, text string) int {
	t.Helper()
	hits, n := scan(name, text)
	for _, h := range hits {
		t.Error(h)
	}
	return n
}

func scan(name, text string) ([]string, int) {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.scanned++
	var hits []string
	for s := range state.secrets {
		if strings.Contains(text, s) {
			hits = append(hits, fmt.Sprintf("%s holds a secret the tests issued (%d bytes long)", name, len(s)))
		}
	}
	state.hits = append(state.hits, hits...)
	return hits, len(state.secrets)
}

// Holds reports whether text holds a remembered secret, counting nothing
// (for tests of the kits themselves).
func Holds(text string) bool {
	state.mu.Lock()
	defer state.mu.Unlock()
	for s := range state.secrets {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// Counts returns how many logs were scanned, how many secrets are
// remembered and how many hits there were.
func Counts() (logs, secrets, hits int) {
	state.mu.Lock()
	defer state.mu.Unlock()
	return state.scanned, len(state.secrets), len(state.hits)
}

// Finish scans every captured log, writes one summary line (and each hit)
// to w, and returns code, or 1 when any log scanned — now or by Scan —
// held a secret. A TestMain calls it with m.Run's code.
func Finish(code int, w io.Writer) int {
	state.mu.Lock()
	logs := state.logs
	state.logs = nil
	state.mu.Unlock()
	for _, l := range logs {
		scan(l.name, l.text())
	}
	n, secrets, hits := Counts()
	if n == 0 {
		return code
	}
	fmt.Fprintf(w, "secret scan: %d logs scanned for the %d secrets issued (tokens, secret ids, OTPs, values): %d found\n", n, secrets, hits)
	if hits > 0 {
		state.mu.Lock()
		for _, h := range state.hits {
			fmt.Fprintln(w, "secret scan: "+h)
		}
		state.mu.Unlock()
		return 1
	}
	return code
}
