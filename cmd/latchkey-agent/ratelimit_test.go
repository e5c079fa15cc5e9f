package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// statusRecorder keeps the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// loginAnswer is one login request the front saw: when, and Vault's status
// and Retry-After.
type loginAnswer struct {
	at         time.Time
	status     int
	retryAfter string
}

// jsonLogLines returns the agent's JSON log lines whose msg is msg.
func jsonLogLines(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// Defect: a login refused by a Vault rate limit quota (429, with
// Retry-After when sys/quotas/config enables the headers) was tried again
// after min_backoff, while the quota still refused it: a fleet hammered a
// limited Vault in step. The agent now waits at least what Vault asked
// (within max_backoff), then logs in, with no attempt in between.
func TestLoginWaitsForRateLimitRetryAfter(t *testing.T) {
	dir := t.TempDir()
	const mount = "approle-ratelimit"
	loginPath := "auth/" + mount + "/login"
	cfg, sink := approleConfig(t, dir, mount, "")
	// Without the fix the second attempt would come after about 1 s.
	testkit.WriteFile(t, cfg, strings.Replace(testkit.ReadFile(cfg), "    config = {\n", "    min_backoff = \"1s\"\n    max_backoff = \"1m\"\n    config = {\n", 1))
	c := srv.Client
	_, err := c.Logical().Write("sys/quotas/config", map[string]any{"enable_rate_limit_response_headers": true})
	testkit.Must(t, err)
	t.Cleanup(func() {
		c.Logical().Write("sys/quotas/config", map[string]any{"enable_rate_limit_response_headers": false})
	})
	_, err = c.Logical().Write("sys/quotas/rate-limit/"+mount, map[string]any{"path": loginPath, "rate": 1, "interval": "5s"})
	testkit.Must(t, err)
	t.Cleanup(func() { c.Logical().Delete("sys/quotas/rate-limit/" + mount) })

	target, err := url.Parse(srv.Addr)
	testkit.Must(t, err)
	var mu sync.Mutex
	var logins []loginAnswer
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/"+loginPath {
			vaulttest.Forward(w, r, target)
			return
		}
		at := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		vaulttest.Forward(rec, r, target)
		mu.Lock()
		logins = append(logins, loginAnswer{at, rec.status, w.Header().Get("Retry-After")})
		mu.Unlock()
	}))
	t.Cleanup(front.Close)
	answers := func() []loginAnswer {
		mu.Lock()
		defer mu.Unlock()
		return append([]loginAnswer(nil), logins...)
	}

	// The test's own login takes the interval's one request (from the
	// same address as the agent's).
	lc, err := srv.NewClient("")
	testkit.Must(t, err)
	_, err = lc.Logical().Write(loginPath, map[string]any{
		"role_id": testkit.ReadFile(dir + "/role-id"), "secret_id": testkit.ReadFile(dir + "/secret-id"),
	})
	testkit.Must(t, err)

	a := startAgent(t, []string{"-config", cfg, "-log-format", "json"}, "VAULT_ADDR="+front.URL)
	testkit.Eventually(t, "the token in the sink", func() bool { return testkit.ReadFile(sink) != "" })
	tc, err := srv.NewClient(testkit.ReadFile(sink))
	testkit.Must(t, err)
	if _, err := tc.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the sink's token does not work: %v", err)
	}

	got := answers()
	if len(got) == 0 || got[0].status != http.StatusTooManyRequests {
		t.Fatalf("the agent's first login was not refused by the quota (%+v): the interval ended before it", got)
	}
	if len(got) != 2 || got[1].status != http.StatusOK {
		t.Fatalf("login requests %+v, want the refused one and one that logged in", got)
	}
	asked, err := strconv.Atoi(got[0].retryAfter)
	if err != nil || asked < 1 {
		t.Fatalf("Vault's 429 had Retry-After %q, want seconds", got[0].retryAfter)
	}
	askedFor := time.Duration(asked) * time.Second
	const tolerance = 100 * time.Millisecond
	if gap := got[1].at.Sub(got[0].at); gap < askedFor-tolerance {
		t.Errorf("the second login came %s after the refused one; Vault asked for %s", gap, askedFor)
	}

	log := a.stderr.String()
	failed := jsonLogLines(t, log, "login failed")
	if len(failed) != 1 {
		t.Fatalf("%d \"login failed\" lines, want 1:\n%s", len(failed), log)
	}
	retryIn, err := time.ParseDuration(failed[0]["retry_in"].(string))
	testkit.Must(t, err)
	if retryIn < askedFor-tolerance {
		t.Errorf("retry_in %s, shorter than Vault's Retry-After %s", retryIn, askedFor)
	}
	if ra, _ := failed[0]["retry_after"].(string); ra != askedFor.String() {
		t.Errorf("retry_after = %q, want %s", ra, askedFor)
	}
	if !strings.Contains(failed[0]["error"].(string), "429") {
		t.Errorf("the logged error does not carry Vault's 429: %v", failed[0]["error"])
	}
	if n := len(jsonLogLines(t, log, "logged in")); n != 1 {
		t.Errorf("%d \"logged in\" lines, want 1", n)
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}
