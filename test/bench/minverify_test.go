package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Every variant of the minimal verify client builds, sends the OTP it read
// from stdin to <mount>/verify in one POST, and exits 0 on Vault's 200 and
// non-zero on anything else: a floor that cannot tell a yes from a no
// would measure nothing.
func TestMinClients(t *testing.T) {
	ms, err := buildMinClients(filepath.Join("..", ".."), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("%d variants, want 4", len(ms))
	}
	status := make(chan int, 1)
	bodies := make(chan string, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			body := ""
			if err == nil {
				b, _ := io.ReadAll(req.Body)
				body = req.Method + " " + req.URL.Path + " " + string(b)
			}
			bodies <- body
			code := <-status
			io.WriteString(c, "HTTP/1.1 "+strconv.Itoa(code)+" "+http.StatusText(code)+"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			c.Close()
		}
	}()
	for _, m := range ms {
		for _, code := range []int{200, 400, 503} {
			status <- code
			cmd := exec.Command(m.bin, ln.Addr().String(), "ssh-bench")
			cmd.Stdin = strings.NewReader("0f1e2d3c-0000-4000-8000-00000000abcd\x00")
			err := cmd.Run()
			got := <-bodies
			if want := `POST /v1/ssh-bench/verify {"otp":"0f1e2d3c-0000-4000-8000-00000000abcd"}`; got != want {
				t.Errorf("%s: Vault got %q, want %q", m.name, got, want)
			}
			var ee *exec.ExitError
			switch {
			case code == 200 && err != nil:
				t.Errorf("%s: %d answer: %v, want exit 0", m.name, code, err)
			case code != 200 && !errors.As(err, &ee):
				t.Errorf("%s: %d answer: %v, want a non-zero exit", m.name, code, err)
			}
		}
	}
}
