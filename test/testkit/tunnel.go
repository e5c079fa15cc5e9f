package testkit

import (
	"io"
	"net"
	"net/http"
)

// Tunnel answers a CONNECT request as a forward proxy does: it dials
// upstream (host:port), answers 200 and copies bytes both ways until either
// side closes. A dial failure is answered 502.
func Tunnel(w http.ResponseWriter, upstream string) {
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	down, rw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		// What the client sent after the CONNECT, already buffered.
		if n := rw.Reader.Buffered(); n > 0 {
			b, _ := rw.Reader.Peek(n)
			up.Write(b)
		}
		io.Copy(up, down)
		up.Close()
	}()
	io.Copy(down, up)
	down.Close()
}
