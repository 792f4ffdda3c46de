package server

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// parseTOMLLines reads the simple TOML of fly.toml: [section] and
// [[section]] headers and key = value lines, comments dropped. Repeated array
// tables get the index of their occurrence: "http_service.checks#0".
func parseTOMLLines(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]string{"": {}}
	seen := map[string]int{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, " #"); i >= 0 && !strings.Contains(line[:i], `"`) {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[["):
			name := strings.TrimSuffix(strings.TrimPrefix(line, "[["), "]]")
			section = name + "#" + itoa(seen[name])
			seen[name]++
			out[section] = map[string]string{}
		case strings.HasPrefix(line, "["):
			section = strings.TrimSuffix(strings.TrimPrefix(line, "["), "]")
			out[section] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: not key = value: %q", path, n, line)
			}
			out[section][strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestFlyToml(t *testing.T) {
	toml := parseTOMLLines(t, filepath.Join("..", "fly.toml"))
	want := map[string]map[string]string{
		"":                      {"app": "adbot", "kill_signal": "SIGTERM"},
		"build":                 {"dockerfile": "deploy/Dockerfile"},
		"env":                   {"PORT": itoaPort(DefaultPort), "ADBOT_DATA_DIR": "/data", "ADBOT_NATS_PORT": itoaPort(DefaultNATSPort)},
		"http_service":          {"internal_port": itoaPort(DefaultPort), "force_https": "true", "auto_stop_machines": "off", "min_machines_running": "1"},
		"http_service.checks#0": {"path": HealthRoute},
		"mounts":                {"destination": "/data"},
	}
	for section, keys := range want {
		for k, v := range keys {
			if got := toml[section][k]; got != v {
				t.Errorf("fly.toml [%s] %s = %q, want %q", section, k, got, v)
			}
		}
	}
	for _, k := range []string{"primary_region", "kill_timeout"} {
		if toml[""][k] == "" {
			t.Errorf("fly.toml has no %s", k)
		}
	}
	if toml["mounts"]["source"] == "" {
		t.Error("fly.toml [mounts] has no source")
	}
	if _, err := os.Stat(filepath.Join("..", toml["build"]["dockerfile"])); err != nil {
		t.Errorf("fly.toml's dockerfile: %v", err)
	}
}

func itoaPort(n int) string { return strconv.Itoa(n) }

func TestAppManifest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "app-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name           string `json:"name"`
		Description    string `json:"description"`
		URL            string `json:"url"`
		HookAttributes struct {
			URL    string `json:"url"`
			Active bool   `json:"active"`
		} `json:"hook_attributes"`
		RedirectURL string            `json:"redirect_url"`
		Public      *bool             `json:"public"`
		Permissions map[string]string `json:"default_permissions"`
		Events      []string          `json:"default_events"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("app-manifest.json: %v", err)
	}
	if m.Name == "" || m.URL == "" || m.RedirectURL == "" || m.Public == nil || !m.HookAttributes.Active {
		t.Errorf("manifest lacks name, url, redirect_url, public or an active hook: %+v", m)
	}
	if !strings.HasSuffix(m.HookAttributes.URL, WebhookRoute) || !strings.HasPrefix(m.HookAttributes.URL, "https://") {
		t.Errorf("hook url %q is not https://...%s", m.HookAttributes.URL, WebhookRoute)
	}
	wantPerms := map[string]string{"contents": "write", "issues": "write", "pull_requests": "write", "checks": "write", "metadata": "read"}
	if diff := cmp.Diff(m.Permissions, wantPerms); diff != "" {
		t.Errorf("default_permissions (-got +want):\n%s", diff)
	}
	wantEvents := []string{"issues", "issue_comment", "pull_request", "pull_request_review", "pull_request_review_comment"}
	if diff := cmp.Diff(m.Events, wantEvents); diff != "" {
		t.Errorf("default_events (-got +want):\n%s", diff)
	}
	// Every permission the token broker grants must be one the App holds.
	for p := range grantable {
		if m.Permissions[p] != "write" {
			t.Errorf("the broker grants %s but the App holds %q", p, m.Permissions[p])
		}
	}
}

func TestDeployFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"Dockerfile", []string{"CGO_ENABLED=1", "AS build", "USER 10001", `CMD ["serve"]`}},
		{"adbot-runner.service", []string{"ExecStart=/usr/local/bin/adbot runner", "User=adbot", "NoNewPrivileges=yes", "ProtectSystem=strict", "DevicePolicy=closed", "EnvironmentFile=/etc/adbot/runner.env"}},
		{"nats-cluster.conf", []string{"jetstream", "cluster", "routes", "n1.example.com:6222", "n2.example.com:6222", "n3.example.com:6222"}},
	}
	for _, tc := range tests {
		b, err := os.ReadFile(filepath.Join("..", "deploy", tc.file))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("deploy/%s lacks %q", tc.file, w)
			}
		}
	}
}

// writeTestTLS writes a self-signed CA and a node certificate signed by it
// into dir as ca.crt, node.crt and node.key.
func writeTestTLS(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "adbot test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	node := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "n1.example.com"}, DNSNames: []string{"n1.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	nodeDER, err := x509.CreateCertificate(rand.Reader, node, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":   {Type: "CERTIFICATE", Bytes: caDER},
		"node.crt": {Type: "CERTIFICATE", Bytes: nodeDER},
		"node.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNATSClusterConf parses deploy/nats-cluster.conf with nats-server's own
// parser (TLS files moved to a temporary directory).
func TestNATSClusterConf(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "nats-cluster.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTestTLS(t, dir)
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(string(b), "/etc/nats/tls/", dir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"NATS_ROUTE_PASSWORD", "ADBOT_SERVER_PASSWORD", "ADBOT_RUNNER_PASSWORD"} {
		t.Setenv(v, "test-"+strings.ToLower(v))
	}
	o, err := natsserver.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-cluster.conf: %v", err)
	}
	if !o.JetStream || o.Cluster.Name != "adbot" || len(o.Routes) != 3 || o.Cluster.TLSConfig == nil {
		t.Errorf("cluster config: jetstream %v, cluster %q, %d routes, TLS %v", o.JetStream, o.Cluster.Name, len(o.Routes), o.Cluster.TLSConfig != nil)
	}
	users := map[string]*natsserver.User{}
	for _, u := range o.Users {
		users[u.Username] = u
	}
	if users["adbot-server"] == nil || users["adbot-runner"] == nil {
		t.Fatalf("users = %v, want adbot-server and adbot-runner", users)
	}
	if p := users["adbot-runner"].Permissions; p == nil || p.Publish == nil || !slices.Contains(p.Publish.Deny, "adbot.commands") {
		t.Errorf("runners may publish commands: %+v", p)
	}
}
