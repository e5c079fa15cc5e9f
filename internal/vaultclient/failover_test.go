package vaultclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/vaultclient"
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
			c, err := vaultclient.New(vaultclient.Config{Addresses: addrs, Timeout: 3 * time.Second, MaxRetries: vaultclient.Int(0)})
			testkit.Must(t, err)
			c.SetToken("t")
			for i := 0; i < 3; i++ {
				sec, err := c.Write(context.Background(), "secret/x", map[string]any{"k": "v"})
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
	c, err := vaultclient.New(vaultclient.Config{Addresses: []string{"http://" + hole.Addr, deadAddr(t)}, Timeout: time.Second, MaxRetries: vaultclient.Int(0)})
	testkit.Must(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(context.Background(), "secret/x")
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
	c, err := vaultclient.New(vaultclient.Config{Addresses: []string{deadAddr(t), server(t, http.StatusServiceUnavailable, &sealed)}, Timeout: 3 * time.Second, MaxRetries: vaultclient.Int(0)})
	testkit.Must(t, err)
	_, err = c.Read(context.Background(), "secret/x")
	if err == nil || !strings.Contains(err.Error(), "Vault is sealed") {
		t.Fatalf("err = %v, want the sealed node's answer", err)
	}
}

// A request for another host (a standby's redirect to the active node)
// goes where it was sent, not to the failover list.
func TestFailoverPassesOtherHostsThrough(t *testing.T) {
	var listed, other atomic.Int32
	f, err := vaultclient.NewFailover([]string{deadAddr(t), server(t, 200, &listed)}, time.Second, nil)
	testkit.Must(t, err)
	c := &http.Client{Transport: f}
	resp, err := c.Get(server(t, 200, &other) + "/v1/x")
	testkit.Must(t, err)
	resp.Body.Close()
	if other.Load() != 1 || listed.Load() != 0 {
		t.Fatalf("other host got %d, listed host %d requests; want 1, 0", other.Load(), listed.Load())
	}
}

// standby answers every request like a Vault standby: a redirect to
// location (a node of the list), or status with Vault's error message.
func standby(t *testing.T, status int, location, message string, n *atomic.Int32) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if location != "" {
			w.Header().Set("Location", location+r.URL.RequestURI())
		}
		w.WriteHeader(status)
		if message != "" {
			io.WriteString(w, `{"errors":[`+strconv.Quote(message)+`]}`)
		}
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// What a standby answers while the active node it knew is dead or while
// it knows none: the next address is tried at once, in the same request.
// A 500 for any other reason is an answer (the node may have processed the
// request).
func TestFailoverStandbyAnswers(t *testing.T) {
	dead := deadAddr(t)
	tests := []struct {
		name     string
		status   int
		location string
		message  string
		// wantGood: the request reached the good node; else the
		// standby's answer is returned.
		wantGood bool
	}{
		{"redirect to the dead active node", http.StatusTemporaryRedirect, dead, "", true},
		{"500 no active node known", http.StatusInternalServerError, "", vaultclient.NotActive, true},
		{"503 sealed", http.StatusServiceUnavailable, "", "Vault is sealed", true},
		{"500 from a backend", http.StatusInternalServerError, "", "internal error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var good, sb atomic.Int32
			addrs := []string{standby(t, tt.status, tt.location, tt.message, &sb), dead, server(t, 200, &good)}
			c, err := vaultclient.New(vaultclient.Config{Addresses: addrs, Timeout: 3 * time.Second, MaxRetries: vaultclient.Int(0)})
			testkit.Must(t, err)
			c.SetToken("t")
			start := time.Now()
			sec, err := c.Write(context.Background(), "secret/x", map[string]any{"k": "v"})
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %s; the next address should be tried at once", took)
			}
			if !tt.wantGood {
				if err == nil || !strings.Contains(err.Error(), tt.message) || good.Load() != 0 {
					t.Fatalf("err = %v, good node asked %d times; want the standby's answer only", err, good.Load())
				}
				return
			}
			testkit.Must(t, err)
			if sec.Data["body"] != `{"k":"v"}` || good.Load() != 1 || sb.Load() != 1 {
				t.Fatalf("body %q, good node asked %d, standby %d times; want the whole request once each", sec.Data["body"], good.Load(), sb.Load())
			}
		})
	}
}

// With no address answering, the error names each address tried and its
// reason; a node reached through a standby's redirect is tried once.
func TestFailoverErrorNamesEveryAddress(t *testing.T) {
	var n atomic.Int32
	dead := deadAddr(t)
	sb := standby(t, http.StatusTemporaryRedirect, dead, "", &n)
	c, err := vaultclient.New(vaultclient.Config{Addresses: []string{sb, dead}, Timeout: 3 * time.Second, MaxRetries: vaultclient.Int(0)})
	testkit.Must(t, err)
	_, err = c.Read(context.Background(), "secret/x")
	var na *vaultclient.NoAnswerError
	if !errors.As(err, &na) || len(na.Errs) != 1 {
		t.Fatalf("err = %v, want a vaultclient.NoAnswerError for the standby's redirect", err)
	}
	for _, want := range []string{sb + ": redirected to " + dead + ": ", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err %q lacks %q", err, want)
		}
	}
}

// Addresses that differ by path only (two clusters behind one load
// balancer's host and port) are two addresses: each request goes to the
// path of the address it is sent to. Before, the first address's path was
// kept, so failing over sent the same URL again.
func TestFailoverKeepsEachAddressesPath(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/vault-a/") {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"errors":["Vault is sealed"]}`)
			return
		}
		io.WriteString(w, `{"data":{"path":"`+r.URL.Path+`"}}`)
	}))
	t.Cleanup(hs.Close)
	c, err := vaultclient.New(vaultclient.Config{Addresses: []string{hs.URL + "/vault-a", hs.URL + "/vault-b/"}, Timeout: 3 * time.Second, MaxRetries: vaultclient.Int(0)})
	testkit.Must(t, err)
	c.SetToken("t")
	sec, err := c.Read(context.Background(), "secret/x")
	testkit.Must(t, err)
	mu.Lock()
	defer mu.Unlock()
	if got := sec.Data["path"]; got != "/vault-b/v1/secret/x" {
		t.Errorf("answered on %q, want /vault-b/v1/secret/x (requests: %v)", got, paths)
	}
	if len(paths) != 2 || paths[0] != "/vault-a/v1/secret/x" {
		t.Errorf("requests %v, want /vault-a/v1/secret/x then /vault-b/v1/secret/x", paths)
	}
}
