package sandbox_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/runners/sandbox"
)

// The proxy on its own, without a sandbox: these run everywhere.

func startProxy(t *testing.T, allow string) (*sandbox.Proxy, *refusals) {
	t.Helper()
	rules, err := sandbox.ParseRules(allow)
	if err != nil {
		t.Fatal(err)
	}
	var r refusals
	px, err := sandbox.StartProxy(filepath.Join(t.TempDir(), "px.sock"), rules, r.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return px, &r
}

// client reaches every URL through the proxy's socket.
func client(px *sandbox.Proxy) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: func(*http.Request) (*url.URL, error) { return url.Parse("http://egress.invalid") },
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", px.Socket())
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

func TestProxy(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "plain") }))
	defer ok.Close()
	okTLS := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "tunnelled") }))
	defer okTLS.Close()
	no := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "never") }))
	defer no.Close()
	host := func(s *httptest.Server) string { return s.Listener.Addr().String() }
	px, refused := startProxy(t, host(ok)+","+host(okTLS))
	cl := client(px)

	for _, tc := range []struct {
		url, want string
		status    int
	}{
		{ok.URL, "plain", 200},
		{okTLS.URL, "tunnelled", 200},
	} {
		resp, err := cl.Get(tc.url)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.url, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || string(b) != tc.want {
			t.Errorf("GET %s = %d %q, want %d %q", tc.url, resp.StatusCode, b, tc.status, tc.want)
		}
	}
	if _, err := cl.Get(no.URL); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("CONNECT to a host not allowed: err = %v, want Forbidden", err)
	}
	// A request in origin form is no proxy request.
	c, err := net.Dial("unix", px.Socket())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /internal HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("origin-form request = %d, want 403", resp.StatusCode)
	}
	refused.mu.Lock()
	defer refused.mu.Unlock()
	want := []sandbox.Refusal{
		{Method: "CONNECT", Host: host(no), Reason: "not in the allowlist"},
		{Method: "GET", Host: "169.254.169.254", Reason: "only CONNECT and http:// requests are proxied"},
	}
	if diff := cmp.Diff(refused.got, want); diff != "" {
		t.Errorf("refusals (-got +want):\n%s", diff)
	}
}

// TestProxyCloseEndsTunnels: Close returns with a tunnel open, ends it and
// removes the socket.
func TestProxyCloseEndsTunnels(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() { // ends when ln closes
		c, err := ln.Accept()
		if err == nil {
			held <- c
		}
	}()
	px, _ := startProxy(t, ln.Addr().String())
	c, err := net.Dial("unix", px.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", ln.Addr(), ln.Addr())
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("CONNECT answered %q, %v", line, err)
	}
	if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("CONNECT answer's end: %q, %v", blank, err)
	}
	up := <-held
	defer up.Close()
	if err := px.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a failure, not a hang
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after Close: %v, want the tunnel closed", err)
	}
	if _, err := os.Stat(px.Socket()); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestStartProxyRefuses(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 120)+".sock")
	if _, err := sandbox.StartProxy(long, nil, nil); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("long socket path: err = %v", err)
	}
	dir := t.TempDir()
	taken := filepath.Join(dir, "taken.sock")
	if err := os.WriteFile(taken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.StartProxy(taken, nil, nil); err == nil {
		t.Error("socket path already taken: no error")
	}
}
