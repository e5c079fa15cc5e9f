package vaultclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

func deadAddr(t *testing.T) string {
	return "http://127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
}

// server answers with status and the request body, counting requests.
func server(t *testing.T, status int, n *atomic.Int32) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, `{"data":{"path":"`+r.URL.Path+`","body":`+strconv.Quote(string(b))+`}}`)
		} else {
			io.WriteString(w, `{"errors":["Vault is sealed"]}`)
		}
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestFailoverSkipsNodesThatGiveNoAnswerAndSticks(t *testing.T) {
	var good, sealed atomic.Int32
	hole := testkit.StartHung(t)
	tests := map[string][]string{
		"black-holed, dead, good": {"http://" + hole.Addr, deadAddr(t), server(t, 200, &good)},
		"sealed, good":            {server(t, http.StatusServiceUnavailable, &sealed), server(t, 200, &good)},
	}
	for name, addrs := range tests {
		t.Run(name, func(t *testing.T) {
			good.Store(0)
			holeBefore := hole.Accepted()
			c, err := New(Config{Addresses: addrs, Timeout: 3 * time.Second, MaxRetries: Int(0)})
			testkit.Must(t, err)
			c.SetToken("t")
			for i := 0; i < 3; i++ {
				sec, err := c.Logical().Write("secret/x", map[string]any{"k": "v"})
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if sec.Data["body"] != `{"k":"v"}` {
					t.Fatalf("request %d: body %q reached the server, want the whole request", i, sec.Data["body"])
				}
			}
			if got := good.Load(); got != 3 {
				t.Errorf("good server saw %d requests, want 3", got)
			}
			// Sticky: only the first request tried the black hole.
			if got := hole.Accepted() - holeBefore; got > 1 {
				t.Errorf("black hole got %d connections, want at most 1", got)
			}
		})
	}
	if sealed.Load() != 1 {
		t.Errorf("sealed node asked %d times, want once (then sticky)", sealed.Load())
	}
}

func TestFailoverNoAddressAnswersIsAnErrorWithinTimeout(t *testing.T) {
	hole := testkit.StartHung(t)
	c, err := New(Config{Addresses: []string{"http://" + hole.Addr, deadAddr(t)}, Timeout: time.Second, MaxRetries: Int(0)})
	testkit.Must(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := c.Logical().Read("secret/x")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read succeeded with no server answering")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still waiting 10 s past a 1 s timeout")
	}
}

func TestFailoverLastUnavailableAnswerIsReturned(t *testing.T) {
	var sealed atomic.Int32
	c, err := New(Config{Addresses: []string{deadAddr(t), server(t, http.StatusServiceUnavailable, &sealed)}, Timeout: 3 * time.Second, MaxRetries: Int(0)})
	testkit.Must(t, err)
	_, err = c.Logical().Read("secret/x")
	if err == nil || !strings.Contains(err.Error(), "Vault is sealed") {
		t.Fatalf("err = %v, want the sealed node's answer", err)
	}
}

func TestOneAddressHasNoFailover(t *testing.T) {
	c, err := New(Config{Address: "http://127.0.0.1:8200", Addresses: []string{"http://127.0.0.1:8200"}})
	testkit.Must(t, err)
	if _, ok := c.CloneConfig().HttpClient.Transport.(*Failover); ok {
		t.Fatal("one address (listed twice) got a Failover transport")
	}
	if _, err := New(Config{Addresses: []string{"http://a:1", "ftp://b"}}); err == nil {
		t.Fatal("a non-http address in addresses was accepted")
	}
}

// A request for another host (a standby's redirect to the active node)
// goes where it was sent, not to the failover list.
func TestFailoverPassesOtherHostsThrough(t *testing.T) {
	var listed, other atomic.Int32
	f, err := NewFailover([]string{deadAddr(t), server(t, 200, &listed)}, time.Second, nil)
	testkit.Must(t, err)
	c := &http.Client{Transport: f}
	resp, err := c.Get(server(t, 200, &other) + "/v1/x")
	testkit.Must(t, err)
	resp.Body.Close()
	if other.Load() != 1 || listed.Load() != 0 {
		t.Fatalf("other host got %d, listed host %d requests; want 1, 0", other.Load(), listed.Load())
	}
}
