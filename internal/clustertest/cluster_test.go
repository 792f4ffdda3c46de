package clustertest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bounds on the waits, generous for a loaded two-core machine.
const (
	// clusterWait bounds the cluster's start, and a node's catching up.
	clusterWait = 90 * time.Second
	// wait bounds every other poll.
	wait = 60 * time.Second
	// poll is how often a condition is looked at again.
	poll = 50 * time.Millisecond
)

// The users of deploy/nats-cluster.conf.
const (
	serverUser = "adbot-server"
	runnerUser = "adbot-runner"
)

// deployConf is the file under test.
var deployConf = filepath.Join("..", "..", "deploy", "nats-cluster.conf")

// natsServerBin finds nats-server on PATH. Without it the test skips, unless
// CI is set: CI installs it (.ci/run), so there its absence is a failure.
func natsServerBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-node nats-server cluster")
	}
	bin, err := exec.LookPath("nats-server")
	if err == nil {
		return bin
	}
	msg := "nats-server is not on PATH (install it: go install github.com/nats-io/nats-server/v2@<version in go.mod>, as .ci/run does)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// node is one nats-server process of the cluster.
type node struct {
	name                string
	dir                 string
	conf                string
	client, route, http int
	cmd                 *exec.Cmd
	exited              chan struct{}
}

// cluster is three nats-server processes started from deploy/nats-cluster.conf.
type cluster struct {
	t     *testing.T
	bin   string
	nodes []*node
	// pass holds each client user's generated password.
	pass map[string]string
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// freePorts reserves n loopback ports and releases them for nats-server to take.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startCluster starts three nodes configured by deploy/nats-cluster.conf,
// with generated passwords, a generated route CA and certificate (routes
// authenticate by mutual TLS), and
// loopback ports and temporary store directories put in for the file's own.
// It returns once every node reports healthy JetStream.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: natsServerBin(t), pass: map[string]string{
		serverUser: randomHex(16),
		runnerUser: randomHex(16),
	}}
	// The file takes its secrets from the environment, as a deployment does.
	t.Setenv("ADBOT_SERVER_PASSWORD", c.pass[serverUser])
	t.Setenv("ADBOT_RUNNER_PASSWORD", c.pass[runnerUser])
	base, err := conf.ParseFile(deployConf)
	if err != nil {
		t.Fatalf("parse %s: %v", deployConf, err)
	}
	tlsDir := t.TempDir()
	writeRouteTLS(t, tlsDir)

	ports := freePorts(t, 9)
	for i := range 3 {
		n := &node{name: fmt.Sprintf("adbot-n%d", i+1), dir: t.TempDir(), client: ports[3*i], route: ports[3*i+1], http: ports[3*i+2]}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		cfg := nodeConfig(t, base, n, c.nodes, tlsDir)
		// JSON is nats-server configuration too; its \u escapes are not.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cfg); err != nil {
			t.Fatal(err)
		}
		n.conf = filepath.Join(n.dir, "nats.conf")
		if err := os.WriteFile(n.conf, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.nodes {
		c.start(n)
	}
	for _, n := range c.nodes {
		c.waitHealthy(n)
	}
	return c
}

// nodeConfig is the deploy file's configuration for node n: its own name,
// ports, store and TLS files; routes to every node, written as the deploy file
// writes its own (same scheme and user info, the host and port replaced).
func nodeConfig(t *testing.T, base map[string]any, n *node, all []*node, tlsDir string) map[string]any {
	t.Helper()
	cfg := deepCopy(base).(map[string]any)
	cfg["server_name"] = n.name
	cfg["listen"] = fmt.Sprintf("127.0.0.1:%d", n.client)
	cfg["http"] = fmt.Sprintf("127.0.0.1:%d", n.http)
	js := section(t, cfg, "jetstream")
	js["store_dir"] = filepath.Join(n.dir, "jetstream")
	// The deploy file's limits (50 GB) are for a real host; keep the test's small.
	js["max_file_store"], js["max_memory_store"] = int64(1<<30), int64(256<<20)
	cl := section(t, cfg, "cluster")
	cl["listen"] = fmt.Sprintf("127.0.0.1:%d", n.route)
	deployed, ok := cl["routes"].([]any)
	if !ok || len(deployed) != len(all) {
		t.Fatalf("%s: cluster.routes = %v, want %d routes", deployConf, cl["routes"], len(all))
	}
	var routes []any
	for i, r := range deployed {
		u, err := url.Parse(fmt.Sprint(r))
		if err != nil {
			t.Fatalf("%s: route %v: %v", deployConf, r, err)
		}
		u.Host = fmt.Sprintf("127.0.0.1:%d", all[i].route)
		routes = append(routes, u.String())
	}
	cl["routes"] = routes
	tls := section(t, cl, "tls")
	for key, file := range map[string]string{"cert_file": "node.crt", "key_file": "node.key", "ca_file": "ca.crt"} {
		if _, ok := tls[key]; !ok {
			t.Fatalf("%s: cluster.tls has no %s", deployConf, key)
		}
		tls[key] = filepath.Join(tlsDir, file)
	}
	return cfg
}

func section(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	s, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%s: no %s block", deployConf, key)
	}
	return s
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// writeRouteTLS writes a CA and a certificate for 127.0.0.1 signed by it, good
// for both ends of a route, into dir as ca.crt, node.crt and node.key.
func writeRouteTLS(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "adbot cluster test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "adbot node"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":   {Type: "CERTIFICATE", Bytes: caDER},
		"node.crt": {Type: "CERTIFICATE", Bytes: leafDER},
		"node.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// start starts n's process (again, after a kill: same configuration and store).
// Its output goes to n.dir/nats.log, shown when the test fails.
func (c *cluster) start(n *node) {
	t := c.t
	t.Helper()
	logPath := filepath.Join(n.dir, "nats.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", n.name, err)
	}
	first := n.cmd == nil
	n.cmd, n.exited = cmd, make(chan struct{})
	exited := n.exited
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if first && t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log (last 6000 bytes):\n%s", n.name, tail(string(b), 6000))
			}
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kill ends n's process with SIGKILL, as a crash or an OOM kill would.
func (c *cluster) kill(n *node) {
	c.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill %s: %v", n.name, err)
	}
	select {
	case <-n.exited:
	case <-time.After(wait):
		c.t.Fatalf("%s still runs %s after SIGKILL", n.name, wait)
	}
}

// waitHealthy waits until n's /healthz says its JetStream is up and current.
func (c *cluster) waitHealthy(n *node) {
	c.t.Helper()
	u := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.http)
	c.waitFor(clusterWait, n.name+" to be healthy", func() bool {
		select {
		case <-n.exited:
			c.t.Fatalf("%s exited while starting", n.name)
		default:
		}
		resp, err := httpClient.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// waitFor polls cond until it holds, failing the test after bound.
func (c *cluster) waitFor(bound time.Duration, what string, cond func() bool) {
	c.t.Helper()
	waitFor(c.t, bound, what, cond)
}

func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", bound, what)
		}
		time.Sleep(poll)
	}
}

// url is the client URL list of the given nodes (all when none) for user.
func (c *cluster) url(user string, only ...*node) string {
	if len(only) == 0 {
		only = c.nodes
	}
	var urls []string
	for _, n := range only {
		urls = append(urls, fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", user, c.pass[user], n.client))
	}
	return strings.Join(urls, ",")
}

// asyncErrors collects the errors the server sends a connection on its own
// (permission violations among them).
type asyncErrors chan error

func (e asyncErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	select {
	case e <- err:
	default:
	}
}

// connect dials the cluster as user; the connection closes with the test.
func (c *cluster) connect(user string, errs asyncErrors, only ...*node) *nats.Conn {
	c.t.Helper()
	opts := []nats.Option{nats.Name("clustertest " + user), nats.MaxReconnects(-1), nats.ReconnectWait(200 * time.Millisecond)}
	if errs != nil {
		opts = append(opts, nats.ErrorHandler(errs.handler))
	}
	nc, err := nats.Connect(c.url(user, only...), opts...)
	if err != nil {
		c.t.Fatalf("connect as %s: %v", user, err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// streamStates is what node n's monitoring endpoint (/jsz) says of the
// state of each stream it holds a replica of.
func (c *cluster) streamStates(n *node) (map[string]replicaState, error) {
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?accounts=true&streams=true", n.http))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info natsserver.JSInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("decode /jsz of %s: %w", n.name, err)
	}
	out := map[string]replicaState{}
	for _, a := range info.AccountDetails {
		for _, s := range a.Streams {
			out[s.Name] = replicaState{Msgs: s.State.Msgs, Bytes: s.State.Bytes, FirstSeq: s.State.FirstSeq, LastSeq: s.State.LastSeq}
		}
	}
	return out, nil
}

// replicaState is the part of a stream's state every replica must agree on.
type replicaState struct {
	Msgs, Bytes       uint64
	FirstSeq, LastSeq uint64
}

// leaderOf names the node that leads stream name now.
func leaderOf(ctx context.Context, js jetstream.JetStream, name string) (string, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", name, err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", name)
	}
	return info.Cluster.Leader, nil
}

// violations are the permission violations (and any other "Violation") the
// nodes have logged.
func (c *cluster) violations() []string {
	var out []string
	for _, n := range c.nodes {
		b, err := os.ReadFile(filepath.Join(n.dir, "nats.log"))
		if err != nil {
			c.t.Errorf("read %s's log: %v", n.name, err)
			continue
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(l, "Violation") {
				out = append(out, n.name+": "+l)
			}
		}
	}
	return out
}

func (c *cluster) node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}
