package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultEgress are the hosts the agent always reaches: its model API.
var DefaultEgress = []string{"api.anthropic.com"}

// Defaults for Proxy.
const (
	// DefaultDialTimeout bounds the proxy's connection to an allowed host.
	DefaultDialTimeout = 30 * time.Second
	// maxSocketPath is the longest unix socket path Linux takes (sun_path less its NUL).
	maxSocketPath = 107
)

// Rule allows one host (or, with Wildcard, its subdomains) on one port.
type Rule struct {
	Host     string // lower case, no trailing dot; an IP address as written by netip
	Port     int
	Wildcard bool // "*.example.com": subdomains of Host, not Host itself
}

func (r Rule) String() string {
	h := r.Host
	if r.Wildcard {
		h = "*." + h
	}
	return net.JoinHostPort(h, strconv.Itoa(r.Port))
}

// ParseRule reads one allowlist entry: "host" (port 443), "host:port",
// "*.domain[:port]" for the subdomains of domain, or an IP address
// ("127.0.0.1:8080", "[::1]:8443").
func ParseRule(s string) (Rule, error) {
	in := s
	s = strings.ToLower(strings.TrimSpace(s))
	host, port := s, 443
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Rule{}, fmt.Errorf("egress rule %q: port %q: want 1 to 65535", in, p)
		}
		host, port = h, n
	} else if strings.Count(s, ":") > 1 || strings.HasPrefix(s, "[") {
		return Rule{}, fmt.Errorf("egress rule %q: an IPv6 address needs brackets and a port", in)
	} else if strings.Contains(s, ":") {
		return Rule{}, fmt.Errorf("egress rule %q: %w", in, err)
	}
	r := Rule{Port: port}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		r.Wildcard, host = true, rest
	}
	host = strings.TrimSuffix(host, ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if r.Wildcard {
			return Rule{}, fmt.Errorf("egress rule %q: a wildcard needs a domain", in)
		}
		r.Host = ip.Unmap().String()
		return r, nil
	}
	if err := checkHostName(host); err != nil {
		return Rule{}, fmt.Errorf("egress rule %q: %w", in, err)
	}
	if r.Wildcard && !strings.Contains(host, ".") {
		return Rule{}, fmt.Errorf("egress rule %q: a wildcard needs a domain with a dot", in)
	}
	r.Host = host
	return r, nil
}

// ParseRules reads comma-separated allowlist entries; empty entries are skipped.
func ParseRules(entries ...string) ([]Rule, error) {
	var out []Rule
	for _, e := range entries {
		for part := range strings.SplitSeq(e, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			r, err := ParseRule(part)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func checkHostName(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("want a host name")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q: bad label %q", h, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %q: character %q", h, c)
			}
		}
	}
	return nil
}

// Allows reports whether host:port is allowed by one of rules.
func Allows(rules []Rule, host string, port int) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		host = ip.Unmap().String()
	}
	for _, r := range rules {
		if r.Port != port {
			continue
		}
		if !r.Wildcard && host == r.Host || r.Wildcard && strings.HasSuffix(host, "."+r.Host) {
			return true
		}
	}
	return false
}

// Refusal is one connection the proxy did not make.
type Refusal struct {
	Method string // CONNECT, or the plain HTTP request's method
	Host   string // as asked, host:port
	Reason string
}

// Proxy is a per-cycle egress proxy on a unix socket: HTTP CONNECT tunnels
// and plain http:// requests to allowed hosts pass; everything else is
// refused with 403 and reported to OnRefuse. It is what the agent's
// HTTPS_PROXY reaches from inside its sandbox. Tunnels carry TLS end to end:
// the proxy sees host names and byte counts, never content.
type Proxy struct {
	socket   string
	rules    []Rule
	onRefuse func(Refusal)
	dialer   net.Dialer
	ln       net.Listener
	srv      *http.Server
	served   chan struct{}

	mu      sync.Mutex
	closed  bool
	tunnels map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// StartProxy listens on the unix socket at socket (which must not exist; it
// is made 0600) and serves until Close. onRefuse, if set, is called for every
// refused connection, from the proxy's goroutines: it must be safe for
// concurrent use (route it to the job's log).
func StartProxy(socket string, rules []Rule, onRefuse func(Refusal)) (*Proxy, error) {
	if len(socket) > maxSocketPath {
		return nil, fmt.Errorf("egress proxy socket %s: longer than %d bytes", socket, maxSocketPath)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("egress proxy socket: %w", err)
	}
	p := &Proxy{
		socket: socket, rules: rules, onRefuse: onRefuse, ln: ln,
		dialer:  net.Dialer{Timeout: DefaultDialTimeout},
		served:  make(chan struct{}),
		tunnels: map[net.Conn]struct{}{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() { // ends when Close shuts the server down
		defer close(p.served)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// Socket is the unix socket's path, for Agent.
func (p *Proxy) Socket() string { return p.socket }

// Close stops the proxy: the listener, idle and open requests, and every
// tunnel; it waits for them to end and removes the socket.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for c := range p.tunnels {
		c.Close()
	}
	p.mu.Unlock()
	err := p.srv.Close()
	<-p.served
	p.wg.Wait()
	_ = os.Remove(p.socket)
	if err != nil {
		return fmt.Errorf("egress proxy close: %w", err)
	}
	return nil
}

func (p *Proxy) refuse(w http.ResponseWriter, method, host, reason string) {
	if p.onRefuse != nil {
		p.onRefuse(Refusal{Method: method, Host: host, Reason: reason})
	}
	http.Error(w, "adbot egress proxy: "+host+": "+reason, http.StatusForbidden)
}

// ServeHTTP answers CONNECT and absolute-form http:// requests.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if !r.URL.IsAbs() || r.URL.Scheme != "http" {
		p.refuse(w, r.Method, r.Host, "only CONNECT and http:// requests are proxied")
		return
	}
	host, port := r.URL.Hostname(), 80
	if ps := r.URL.Port(); ps != "" {
		port, _ = strconv.Atoi(ps)
	}
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	if !Allows(p.rules, host, port) {
		p.refuse(w, r.Method, hp, "not in the allowlist")
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	for _, h := range []string{"Proxy-Connection", "Proxy-Authorization", "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		out.Header.Del(h)
	}
	tr := &http.Transport{Proxy: nil, DialContext: p.dialer.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(out)
	if err != nil {
		http.Error(w, "adbot egress proxy: "+hp+": "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	hp := r.Host
	host, ps, err := net.SplitHostPort(hp)
	port, perr := strconv.Atoi(ps)
	if err != nil || perr != nil {
		p.refuse(w, r.Method, hp, "want host:port")
		return
	}
	if !Allows(p.rules, host, port) {
		p.refuse(w, r.Method, hp, "not in the allowlist")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultDialTimeout)
	up, err := p.dialer.DialContext(ctx, "tcp", hp)
	cancel()
	if err != nil {
		http.Error(w, "adbot egress proxy: "+hp+": "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "adbot egress proxy: cannot tunnel", http.StatusInternalServerError)
		return
	}
	down, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if !p.track(down, up) {
		down.Close()
		up.Close()
		return
	}
	defer p.untrack(down, up)
	if _, err := io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	// Bytes the client sent after its request head are already in buf.
	if n := buf.Reader.Buffered(); n > 0 {
		b, _ := buf.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	pipe(down, up)
}

// track records a tunnel's two ends so Close can end them; false once closed.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.tunnels[c] = struct{}{}
	}
	p.wg.Add(1)
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		delete(p.tunnels, c)
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Done()
}
