package runner

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// Vault stops answering the agent (a proxy resets every connection) and
// comes back: one log line and one STATUS= say it is unreachable, naming
// the address and why, and one of each that it is back, however many
// requests failed in between; STATUS= then shows the agent's last status
// again.
func TestVaultUnreachableAndBackLoggedOnceEachWay(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	proxy := vaulttest.NewTCPProxy(t, strings.TrimPrefix(srv.Addr, "https://"))
	cfg := agentConfig(t, dir, method, "", fileSink(filepath.Join(dir, "token"), ""))
	// The agent goes through the proxy, with quick retries.
	cfgText := strings.Replace(testkit.ReadFile(cfg), srv.Addr, strings.Replace(proxy.Addr, "http://", "https://", 1), 1)
	cfgText = strings.Replace(cfgText, "vault {", "vault {\n  timeout = \"1s\"\n  retry {\n    num_retries = -1\n  }", 1)
	testkit.WriteFile(t, cfg, cfgText)
	log, logs := testkit.ObservedAt(t, zapcore.DebugLevel)
	// Token looked up every 100 ms: requests keep failing while it is down.
	r := startWith(t, cfg, 100*time.Millisecond, log)
	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })
	if r.notes.firstContaining(0, "STATUS=authenticated") == "" {
		t.Fatalf("no authenticated STATUS: %v", r.notes.s)
	}
	time.Sleep(300 * time.Millisecond)
	authStatus := r.notes.lastContaining("STATUS=")

	proxy.SetMode(vaulttest.Reset)
	proxy.Cut()
	testkit.Eventually(t, "an unreachable STATUS", func() bool { return r.notes.count("STATUS=vault unreachable: ") == 1 })
	time.Sleep(time.Second) // several more failed lookups
	down := r.notes.firstContaining(0, "STATUS=vault unreachable: ")
	if !strings.Contains(down, proxy.Addr[len("http://"):]) || !strings.Contains(down, "; retrying") {
		t.Errorf("STATUS %q lacks the address or the retry", down)
	}
	if n := logs.FilterMessageSnippet("vault unreachable: ").Len(); n != 1 {
		t.Errorf("%d unreachable log lines, want 1", n)
	}
	if e := logs.FilterMessageSnippet("vault unreachable: ").All(); len(e) == 1 && e[0].Level != zap.WarnLevel {
		t.Errorf("unreachable logged at %s, want warn", e[0].Level)
	}

	from := r.notes.len()
	proxy.SetMode(vaulttest.Pass)
	testkit.Eventually(t, "a reachable-again log line", func() bool { return logs.FilterMessageSnippet("vault reachable again: ").Len() == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := r.notes.count("STATUS=vault unreachable: "); n != 1 {
		t.Errorf("%d unreachable STATUS lines, want 1", n)
	}
	if got := r.notes.firstContaining(from, "STATUS="); got != authStatus {
		t.Errorf("STATUS once back = %q, want the last one again: %q", got, authStatus)
	}
	if n := logs.FilterMessageSnippet("vault reachable again: ").Len(); n != 1 {
		t.Errorf("%d reachable-again lines, want 1", n)
	}
}

// What counts as Vault not answering.
func TestReachObserve(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		down   bool
	}{
		{"200", 200, `{}`, false},
		{"403 is an answer", 403, `{"errors":["permission denied"]}`, false},
		{"sealed", 503, `{"errors":["Vault is sealed"]}`, true},
		{"standby knows no active node", 500, `{"errors":["local node not active but active cluster node not found"]}`, true},
		{"other 500 is an answer", 500, `{"errors":["internal error"]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			rc := &reach{log: zap.NewNop(), notify: func(s string) { got = append(got, s) }, now: time.Now}
			req, _ := http.NewRequest("GET", "http://127.0.0.1:8200/v1/kv/x?version=1", nil)
			resp := &http.Response{StatusCode: tt.status, Status: http.StatusText(tt.status), Body: http.NoBody, Request: req}
			resp.Body = nopBody(tt.body)
			rc.observe(resp, nil)
			if rc.down != tt.down {
				t.Fatalf("down = %v, want %v (%q)", rc.down, tt.down, got)
			}
			if tt.down && (len(got) != 1 || !strings.HasPrefix(got[0], "STATUS=vault unreachable: http://127.0.0.1:8200: ")) {
				t.Errorf("notes %q", got)
			}
			if b := readAll(resp); b != tt.body {
				t.Errorf("body left %q, want %q readable", b, tt.body)
			}
		})
	}
}

func (n *notes) lastContaining(sub string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.s) - 1; i >= 0; i-- {
		if strings.Contains(n.s[i], sub) {
			return n.s[i]
		}
	}
	return ""
}

func nopBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
