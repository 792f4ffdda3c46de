package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/internal/fakegithub"
)

// newTestSweeper sweeps gh's delivery log with the App JWT client of a real
// go-githubapp client creator, and the delivery bucket of an embedded NATS.
func newTestSweeper(t *testing.T, gh *fakegithub.Server, maxAttempts int) (*sweeper, func(guid string)) {
	t.Helper()
	cfg := testConfig(t, gh.URL())
	cc, err := newClientCreator(cfg.GitHub)
	if err != nil {
		t.Fatal(err)
	}
	_, _, res := bustest.Start(t)
	sw := &sweeper{
		apps: func() (hookDeliveries, error) {
			c, err := cc.NewAppClient()
			if err != nil {
				return nil, err
			}
			return c.Apps, nil
		},
		processed:   res.Deliveries,
		interval:    time.Hour,
		window:      DefaultSweepWindow,
		maxPages:    DefaultSweepMaxPages,
		maxAttempts: maxAttempts,
		now:         time.Now,
		metrics:     newMetrics(prometheus.NewRegistry(), nil),
		asked:       map[string]askRecord{},
	}
	markProcessed := func(guid string) {
		if _, err := res.Deliveries.Put(context.Background(), bus.DeliveryKey(guid), []byte(`{"done":true}`)); err != nil {
			t.Fatal(err)
		}
	}
	return sw, markProcessed
}

func TestSweeperRedeliversFailedUnprocessedOnce(t *testing.T) {
	gh := fakegithub.New(t)
	sw, markProcessed := newTestSweeper(t, gh, 1)
	now := time.Now().UTC()
	add := func(guid string, code int, age time.Duration) fakegithub.Delivery {
		return gh.AddDelivery(fakegithub.Delivery{GUID: guid, StatusCode: code, Event: "issues", Action: "opened", DeliveredAt: now.Add(-age)})
	}
	// Oldest first: the fake lists by id, newest first, as GitHub does.
	add("too-old", 503, 80*time.Hour)
	failedOnce := add("failed-once", 503, 60*time.Hour)
	add("later-ok", 503, 50*time.Hour)
	add("processed", 503, 40*time.Hour)
	add("failed-twice", 503, 30*time.Hour)
	failedTwiceAgain := add("failed-twice", 502, 29*time.Hour)
	add("later-ok", 200, 20*time.Hour)
	// 250 successful deliveries push the failures onto the third page.
	for i := range 250 {
		add("", 200, time.Duration(250-i)*time.Minute)
	}
	markProcessed("processed")

	n, err := sw.Sweep(context.Background())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	want := []int64{failedTwiceAgain.ID, failedOnce.ID} // newest first, the newest row of each GUID
	if diff := cmp.Diff(gh.Redelivered(), want); diff != "" {
		t.Errorf("redelivered (-got +want):\n%s", diff)
	}
	if n != len(want) {
		t.Errorf("Sweep returned %d, want %d", n, len(want))
	}
	var cursors int
	for _, r := range gh.Requests() {
		if r.Path == "/app/hook/deliveries" {
			if r.Query.Get("per_page") != "100" {
				t.Errorf("listed with per_page=%q, want 100", r.Query.Get("per_page"))
			}
			if r.Query.Get("cursor") != "" {
				cursors++
			}
		}
	}
	if cursors < 2 {
		t.Errorf("followed %d cursors, want at least 2 (three pages)", cursors)
	}

	// A second sweep asks for nothing: each GUID was asked for once already.
	if n, err := sw.Sweep(context.Background()); err != nil || n != 0 {
		t.Errorf("second Sweep = %d, %v; want 0 redeliveries", n, err)
	}
	if got := len(gh.Redelivered()); got != len(want) {
		t.Errorf("redeliveries after second sweep = %d, want %d", got, len(want))
	}
}

func TestSweeperRetriesUpToMaxAttempts(t *testing.T) {
	gh := fakegithub.New(t)
	sw, _ := newTestSweeper(t, gh, 2)
	d := gh.AddDelivery(fakegithub.Delivery{GUID: "g", StatusCode: 503, Event: "issues"})
	for range 3 {
		if _, err := sw.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(gh.Redelivered(), []int64{d.ID, d.ID}); diff != "" {
		t.Errorf("redelivered (-got +want):\n%s", diff)
	}
	// Once the worker has processed it, nothing more is asked even with attempts left.
	gh2 := fakegithub.New(t)
	sw2, mark2 := newTestSweeper(t, gh2, 5)
	gh2.AddDelivery(fakegithub.Delivery{GUID: "h", StatusCode: 503, Event: "issues"})
	mark2("h")
	if n, err := sw2.Sweep(context.Background()); err != nil || n != 0 || len(gh2.Redelivered()) != 0 {
		t.Errorf("sweep of a processed GUID = %d, %v, redelivered %v", n, err, gh2.Redelivered())
	}
}

func TestSweeperListErrorIsReported(t *testing.T) {
	gh := fakegithub.New(t)
	sw, _ := newTestSweeper(t, gh, 1)
	gh.FailNext("GET", "/app/hook/deliveries", 1, 404, nil)
	if _, err := sw.Sweep(context.Background()); err == nil {
		t.Fatal("Sweep with GitHub answering 404 returned no error")
	}
}

func TestDeliveryOK(t *testing.T) {
	ptr := func(s string) *string { return &s }
	code := func(c int) *int { return &c }
	tests := []struct {
		d    github.HookDelivery
		want bool
	}{
		{github.HookDelivery{StatusCode: code(200), Status: ptr("OK")}, true},
		{github.HookDelivery{StatusCode: code(202)}, true},
		{github.HookDelivery{StatusCode: code(503), Status: ptr("Invalid HTTP Response: 503")}, false},
		{github.HookDelivery{StatusCode: code(0), Status: ptr("timed out")}, false},
		{github.HookDelivery{Status: ptr("OK")}, true},
	}
	for _, tc := range tests {
		if got := deliveryOK(&tc.d); got != tc.want {
			t.Errorf("deliveryOK(%v) = %v, want %v", tc.d, got, tc.want)
		}
	}
}

// TestNATSDownThenSweeperRedelivers follows a delivery through an outage: the
// webhook answers 503 while NATS is down, GitHub records the failure, and the
// server's sweeper (running on start) asks GitHub to redeliver it.
func TestNATSDownThenSweeperRedelivers(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	cfg.Server.IntakeTimeout = 2 * time.Second
	s, base := startServer(t, cfg, withPublishHandler)
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	body := []byte(`{"action":"opened"}`)
	guid := NewDeliveryID()
	status, _ := post(t, base+WebhookRoute, signed(cfg.GitHub.WebhookSecret, "issues", guid, body), body)
	if status != 503 {
		t.Fatalf("delivery with NATS down = %d, want 503", status)
	}
	d := gh.AddDelivery(fakegithub.Delivery{GUID: guid, StatusCode: status, Event: "issues", Action: "opened"})

	// A fresh server on the same data dir, with its sweeper on.
	cfg2 := cfg
	cfg2.Sweeper.Disabled = false
	s2, _ := startServer(t, cfg2, func(s *Server) { s.noWorker = true })
	deadline := time.Now().Add(10 * time.Second)
	for len(gh.Redelivered()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if diff := cmp.Diff(gh.Redelivered(), []int64{d.ID}); diff != "" {
		t.Fatalf("redelivered (-got +want):\n%s", diff)
	}
	// The sweep is counted once it returns, a moment after GitHub saw the request.
	wants := []string{`adbot_sweeper_runs_total{result="ok"} 1`, `adbot_sweeper_redeliveries_total 1`}
	for {
		_, metrics := getMetrics(t, s2)
		missing := ""
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing = want
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSweeperRetriesGitHub5xx: the App client the server builds retries a
// passing GitHub failure (ghretry), so one 502 does not fail a sweep.
func TestSweeperRetriesGitHub5xx(t *testing.T) {
	gh := fakegithub.New(t)
	sw, _ := newTestSweeper(t, gh, 1)
	d := gh.AddDelivery(fakegithub.Delivery{GUID: "g", StatusCode: 503, Event: "issues"})
	gh.FailNext("GET", "/app/hook/deliveries", 1, 502, nil)
	n, err := sw.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Sweep after one 502 = %d, %v; want the redelivery asked for", n, err)
	}
	if diff := cmp.Diff(gh.Redelivered(), []int64{d.ID}); diff != "" {
		t.Errorf("redelivered (-got +want):\n%s", diff)
	}
}
