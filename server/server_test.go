package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/internal/fakegithub"
)

// testKey is an RSA key made once per test binary: an App private key for tests.
func testKey(t testing.TB) string {
	t.Helper()
	return string(fakegithub.AppKey())
}

// testConfig is a valid configuration for a server on loopback with its
// embedded NATS on a free port and its store under t.TempDir().
func testConfig(t testing.TB, githubURL string) Config {
	t.Helper()
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	c.NATS.Embedded.Host = "127.0.0.1"
	c.NATS.Embedded.Port = -1
	c.GitHub.AppID = fakegithub.DefaultAppID
	c.GitHub.PrivateKey = testKey(t)
	c.GitHub.WebhookSecret = randomHex(16)
	c.GitHub.V3APIURL = githubURL
	c.Sweeper.Disabled = true
	c.Server.MetricsAddress = "off"
	c.Hub.Endpoint = "http://127.0.0.1:1"
	return c
}

// publishHandler stands in for handlers/ in intake tests: it publishes every
// issues event as a bus.Command with the delivery id as message id.
type publishHandler struct{ js jetstream.JetStream }

func (h publishHandler) Handles() []string { return []string{"issues"} }

func (h publishHandler) Handle(ctx context.Context, event, delivery string, payload []byte) error {
	var p struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("parse %s payload: %w", event, err)
	}
	b, _ := json.Marshal(bus.Command{DeliveryID: delivery, Kind: bus.CmdOnboard, Event: event + "." + p.Action, Received: time.Now()})
	if _, err := h.js.Publish(ctx, bus.CommandSubject, b, jetstream.WithMsgID(delivery)); err != nil {
		return fmt.Errorf("publish command for delivery %s: %w", delivery, err)
	}
	return nil
}

// startServer builds a server from cfg, lets adjust change it before it runs,
// serves it on a loopback port and stops it when the test ends.
func startServer(t testing.TB, cfg Config, adjust func(*Server), opts ...Option) (*Server, string) {
	t.Helper()
	s, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if adjust != nil {
		adjust(s)
	}
	s.handler = s.routes()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Serve did not return within 20s of cancel")
		}
	})
	// Wait until Serve has started everything (readyz), NATS permitting.
	deadline := time.Now().Add(10 * time.Second)
	for s.checkReady(context.Background()) != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return s, base
}

// withPublishHandler replaces the handlers by publishHandler and keeps the
// command worker off, so tests see the command stream as intake left it.
func withPublishHandler(s *Server) {
	s.handlers = []githubapp.EventHandler{publishHandler{js: s.res.JS}}
	s.noWorker = true
}

func post(t testing.TB, url string, hdr map[string]string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func signed(secret, event, guid string, body []byte) map[string]string {
	return map[string]string{
		"Content-Type":        "application/json",
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   guid,
		"X-Hub-Signature-256": Sign(secret, body),
	}
}

func commandCount(t testing.TB, s *Server) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := s.res.Commands.Info(ctx)
	if err != nil {
		t.Fatalf("command stream info: %v", err)
	}
	return info.State.Msgs
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// getMetrics scrapes the server's metrics handler.
func getMetrics(t testing.TB, s *Server) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetricsRoute, nil))
	return rec.Code, rec.Body.String()
}

func TestWebhookOutcomes(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	cfg.Server.MaxBodyBytes = 4096
	s, base := startServer(t, cfg, withPublishHandler)
	hook := base + WebhookRoute
	secret := cfg.GitHub.WebhookSecret
	opened := []byte(`{"action":"opened","issue":{"number":1,"title":"onboard Qwen/Qwen3-0.6B"}}`)
	form := []byte("payload=" + url.QueryEscape(string(opened)))
	big := []byte(`{"action":"opened","pad":"` + strings.Repeat("x", 5000) + `"}`)

	tests := []struct {
		name   string
		hdr    map[string]string
		body   []byte
		status int
		queued uint64 // commands on the stream after the request
	}{
		{"no signature", map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1"}, opened, http.StatusUnauthorized, 0},
		{"wrong signature", signed("not the secret", "issues", "d-2", opened), opened, http.StatusUnauthorized, 0},
		{"signature of other bytes", func() map[string]string {
			h := signed(secret, "issues", "d-3", []byte(`{}`))
			return h
		}(), opened, http.StatusUnauthorized, 0},
		{"not JSON", signed(secret, "issues", "d-4", []byte("action=opened")), []byte("action=opened"), http.StatusBadRequest, 0},
		{"too large", signed(secret, "issues", "d-5", big), big, http.StatusRequestEntityTooLarge, 0},
		{"missing event type", signed(secret, "", "d-6", opened), opened, http.StatusBadRequest, 0},
		{"unhandled event", signed(secret, "star", "d-7", []byte(`{"action":"created"}`)), []byte(`{"action":"created"}`), http.StatusAccepted, 0},
		{"handled", signed(secret, "issues", "d-8", opened), opened, http.StatusOK, 1},
		{"handled, form-encoded", func() map[string]string {
			h := signed(secret, "issues", "d-10", form)
			h["Content-Type"] = "application/x-www-form-urlencoded"
			return h
		}(), form, http.StatusOK, 2},
		{"form-encoded, payload not JSON", func() map[string]string {
			h := signed(secret, "issues", "d-11", []byte("payload=nope"))
			h["Content-Type"] = "application/x-www-form-urlencoded"
			return h
		}(), []byte("payload=nope"), http.StatusBadRequest, 2},
		{"unsupported content type", func() map[string]string {
			h := signed(secret, "issues", "d-12", opened)
			h["Content-Type"] = "text/plain"
			return h
		}(), opened, http.StatusBadRequest, 2},
		{"valid JSON of the wrong shape", signed(secret, "issues", "d-9", []byte(`{"action":7}`)), []byte(`{"action":7}`), http.StatusBadRequest, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, hook, tc.hdr, tc.body)
			if status != tc.status {
				t.Errorf("status = %d (%q), want %d", status, body, tc.status)
			}
			if got := commandCount(t, s); got != tc.queued {
				t.Errorf("commands queued = %d, want %d", got, tc.queued)
			}
		})
	}
	if status, _ := get(t, hook); status != http.StatusMethodNotAllowed {
		t.Errorf("GET webhook = %d, want 405", status)
	}
}

func TestDuplicateDeliveryQueuedOnce(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	s, base := startServer(t, cfg, withPublishHandler)
	body := []byte(`{"action":"opened"}`)
	for range 3 {
		if status, b := post(t, base+WebhookRoute, signed(cfg.GitHub.WebhookSecret, "issues", "same-guid", body), body); status != http.StatusOK {
			t.Fatalf("status = %d (%q), want 200", status, b)
		}
	}
	if got := commandCount(t, s); got != 1 {
		t.Fatalf("commands queued after 3 deliveries of one GUID = %d, want 1", got)
	}
}

func TestNATSDownAnswers503AndNotReady(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	cfg.Server.IntakeTimeout = 2 * time.Second
	s, base := startServer(t, cfg, withPublishHandler)
	if status, body := get(t, base+ReadyRoute); status != http.StatusOK {
		t.Fatalf("readyz with NATS up = %d %q, want 200", status, body)
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()

	body := []byte(`{"action":"opened"}`)
	status, text := post(t, base+WebhookRoute, signed(cfg.GitHub.WebhookSecret, "issues", "while-down", body), body)
	if status != http.StatusServiceUnavailable {
		t.Errorf("delivery with NATS down = %d %q, want 503", status, text)
	}
	if status, body := get(t, base+ReadyRoute); status != http.StatusServiceUnavailable {
		t.Errorf("readyz with NATS down = %d %q, want 503", status, body)
	}
	if status, _ := get(t, base+HealthRoute); status != http.StatusOK {
		t.Errorf("healthz with NATS down = %d, want 200: the process is alive", status)
	}
	_, metrics := getMetrics(t, s)
	for _, want := range []string{
		`adbot_webhook_deliveries_total{event="issues",outcome="unavailable"} 1`,
		`adbot_webhook_unavailable_total 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMetricsExposed(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	s, base := startServer(t, cfg, withPublishHandler)
	body := []byte(`{"action":"opened"}`)
	post(t, base+WebhookRoute, signed(cfg.GitHub.WebhookSecret, "issues", "m-1", body), body)
	post(t, base+WebhookRoute, signed("wrong", "issues", "m-2", body), body)
	if status, _ := get(t, base+MetricsRoute); status != http.StatusNotFound {
		t.Errorf("public port serves %s: %d, want 404 (metrics are internal)", MetricsRoute, status)
	}
	status, text := getMetrics(t, s)
	if status != http.StatusOK {
		t.Fatalf("metrics = %d", status)
	}
	for _, want := range []string{
		`adbot_webhook_deliveries_total{event="issues",outcome="accepted"} 1`,
		`adbot_webhook_deliveries_total{event="unverified",outcome="unauthorized"} 1`,
		`adbot_webhook_intake_seconds_count{outcome="accepted"} 1`,
		`adbot_queue_depth{stream="ADBOT_COMMANDS",subject="adbot.commands"} 1`,
		`adbot_queue_depth{stream="ADBOT_CYCLES",subject="adbot.cycles.gpus.1"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestShutdownOnCancel(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.MetricsAddress = mln.Addr().String()
	mln.Close()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.noWorker = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	if status, _ := get(t, "http://"+ln.Addr().String()+HealthRoute); status != http.StatusOK {
		t.Fatalf("healthz = %d", status)
	}
	if status, body := get(t, "http://"+cfg.Server.MetricsAddress+MetricsRoute); status != http.StatusOK || !strings.Contains(body, "adbot_queue_depth") {
		t.Errorf("metrics listener = %d %.200q", status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if !s.nc.IsClosed() {
		t.Error("NATS connection still open after Serve returned")
	}
	if s.ns.Running() {
		t.Error("embedded nats-server still running after Serve returned")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + HealthRoute); err == nil {
		t.Error("HTTP still answering after Serve returned")
	}
}

func TestServeHTTPDirect(t *testing.T) {
	// The handler also works without a listener (httptest recorder), as the
	// dispatcher tests in go-githubapp do.
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	withPublishHandler(s)
	s.handler = s.routes()
	body := []byte(`{"action":"opened"}`)
	req := httptest.NewRequest(http.MethodPost, WebhookRoute, bytes.NewReader(body))
	for k, v := range signed(cfg.GitHub.WebhookSecret, "issues", "direct-1", body) {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d %q", rec.Code, rec.Body.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, err := s.res.Commands.GetLastMsgForSubject(ctx, bus.CommandSubject)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != "direct-1" {
		t.Errorf("command Nats-Msg-Id = %q, want the delivery id", got)
	}
	var c bus.Command
	if err := json.Unmarshal(msg.Data, &c); err != nil || c.DeliveryID != "direct-1" {
		t.Errorf("command = %+v, %v", c, err)
	}
}

type captureRT struct{ body string }

func (c *captureRT) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	c.body = string(b)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func TestNullBodyFix(t *testing.T) {
	tests := []struct{ method, path, body, want string }{
		{"POST", "/app/installations/1/access_tokens", "null\n", "{}"},
		{"POST", "/app/installations/1/access_tokens", `{"repositories":["r"]}`, `{"repositories":["r"]}`},
		{"POST", "/repos/o/r/issues/1/comments", "null\n", "null\n"},
	}
	for _, tc := range tests {
		c := &captureRT{}
		req, _ := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(tc.body))
		if _, err := (nullBodyFix{c}).RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if c.body != tc.want {
			t.Errorf("%s %s with %q sent %q, want %q", tc.method, tc.path, tc.body, c.body, tc.want)
		}
	}
}

func TestNewRefusesEmptyWebhookSecret(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/")
	cfg.GitHub.WebhookSecret = ""
	s, err := New(cfg, WithClientCreator(NewDryRunClientCreator(zerolog.Nop()), true))
	if err == nil {
		s.Close()
		t.Fatal("New with an empty webhook secret succeeded")
	}
	if !strings.Contains(err.Error(), "GITHUB_WEBHOOK_SECRET") {
		t.Errorf("error = %v, want it to name GITHUB_WEBHOOK_SECRET", err)
	}
}

// TestExternalNATS runs the server against a NATS server it did not start
// (NATS_URL): no embedded server, the same intake.
func TestExternalNATS(t *testing.T) {
	ext := bustest.Server(t)
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	cfg.NATS.URL = ext.ClientURL()
	s, base := startServer(t, cfg, func(s *Server) { s.noWorker = true })
	if s.ns != nil {
		t.Fatal("embedded nats-server started although NATS_URL is set")
	}
	if s.NATSURL() != ext.ClientURL() {
		t.Errorf("NATSURL = %q, want %q", s.NATSURL(), ext.ClientURL())
	}
	body := onboardIssue(9, "Qwen/Qwen3-0.6B")
	if status, text := post(t, base+WebhookRoute, signed(cfg.GitHub.WebhookSecret, "issues", "ext-1", body), body); status != http.StatusOK {
		t.Fatalf("delivery = %d %q", status, text)
	}
	if got := commandCount(t, s); got != 1 {
		t.Errorf("commands on the external server = %d, want 1", got)
	}
}

// TestEmbeddedNATSPortInUse: a port already taken fails start-up at once,
// saying why, instead of waiting out the connect timeout.
func TestEmbeddedNATSPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, "http://127.0.0.1:1/")
	cfg.NATS.Embedded.Port = ln.Addr().(*net.TCPAddr).Port
	cfg.NATS.ConnectTimeout = time.Hour // a wait of this length would hang the test
	s, err := New(cfg, WithClientCreator(NewDryRunClientCreator(zerolog.Nop()), true))
	if err == nil {
		s.Close()
		t.Fatal("New succeeded on a port already in use")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error = %v, want it to say the address is in use", err)
	}
}

// An unsigned request's delivery header went into the log whole, up to the
// server's 1 MB header limit, for anyone who can reach the webhook.
func TestWebhookLogsAnUnverifiedDeliveryIDClipped(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	s, _ := startServer(t, cfg, withPublishHandler)
	var logs bytes.Buffer
	ctx := zerolog.New(&logs).WithContext(context.Background())
	huge := strings.Repeat("d", 100_000)
	body := []byte(`{"action":"opened"}`)
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, WebhookRoute, bytes.NewReader(body))
	for k, v := range signed("not the secret", "issues", huge, body) {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", rec.Code)
	}
	if !strings.Contains(logs.String(), "signature rejected") || logs.Len() > 1000 {
		t.Errorf("log is %d bytes, want one short line about the signature: %.300s", logs.Len(), logs.String())
	}
}
