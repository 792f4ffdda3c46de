package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/fixtures"
)

// fakeHub serves the Hub's real answer for Qwen/Qwen3-0.6B.
func fakeHub(t *testing.T) *httptest.Server {
	t.Helper()
	api := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "api.json")
	config := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "config.json")
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/models/Qwen/Qwen3-0.6B" || strings.HasPrefix(r.URL.Path, "/api/models/Qwen/Qwen3-0.6B/revision/"):
			_, _ = w.Write(api)
		case strings.HasPrefix(r.URL.Path, "/Qwen/Qwen3-0.6B/resolve/") && strings.HasSuffix(r.URL.Path, "/config.json"):
			_, _ = w.Write(config)
		case strings.HasPrefix(r.URL.Path, "/Qwen/Qwen3-0.6B/resolve/"):
			// The model's other code files: a line standing for each.
			_, _ = w.Write([]byte("stand-in for " + r.URL.Path + "\n"))
		default:
			w.Header().Set("X-Error-Code", "RepoNotFound")
			http.Error(w, `{"error":"Repository not found"}`, http.StatusUnauthorized)
		}
	}))
	t.Cleanup(hub.Close)
	return hub
}

// TestEndToEnd runs the whole server: a signed issues.opened from a user with
// write permission becomes a 👀 reaction, an [AGENT] status comment and a
// cycle on adbot.cycles.gpus.1, and the delivery is recorded as processed.
func TestEndToEnd(t *testing.T) {
	gh := fakegithub.New(t)
	gh.SetInstallation("NVIDIA", "TensorRT-LLM", 42)
	gh.SetPermission("NVIDIA", "TensorRT-LLM", "alice", "write")
	cfg := testConfig(t, gh.URL())
	cfg.Hub.Endpoint = fakeHub(t).URL
	cfg.Workers = 1
	s, base := startServer(t, cfg, nil)

	guid := NewDeliveryID()
	body := onboardIssue(5, "Qwen/Qwen3-0.6B")
	if status, text := post(t, base+WebhookRoute, signed(cfg.GitHub.WebhookSecret, "issues", guid, body), body); status != http.StatusOK {
		t.Fatalf("delivery = %d %q, want 200", status, text)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons, err := s.res.Cycles.Consumer(ctx, bus.ConsumerName(1))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 1 {
		t.Fatalf("cycles on %s = %d, want 1 (fetch error %v)", bus.CycleSubject(1), len(msgs), batch.Error())
	}
	var c bus.Cycle
	if err := json.Unmarshal(msgs[0].Data(), &c); err != nil {
		t.Fatal(err)
	}
	if c.JobKey != bus.JobKey("NVIDIA", "TensorRT-LLM", 5) || c.ModelID != "Qwen/Qwen3-0.6B" || c.GPUs != 1 || c.Number != 1 || c.Kind != bus.KindOnboard || c.InstallationID != 42 {
		t.Errorf("cycle = %+v", c)
	}

	var eyes bool
	for _, r := range gh.Reactions("NVIDIA", "TensorRT-LLM", 5) {
		eyes = eyes || (r.Content == "eyes" && r.CommentID == 0)
	}
	if !eyes {
		t.Errorf("no 👀 reaction on the issue: %+v", gh.Reactions("NVIDIA", "TensorRT-LLM", 5))
	}
	comments := gh.Comments("NVIDIA", "TensorRT-LLM", 5)
	if len(comments) == 0 {
		t.Fatal("no status comment on the issue")
	}
	for _, cm := range comments {
		if !strings.HasPrefix(cm.Body, "[AGENT]") {
			t.Errorf("comment %d does not begin [AGENT]: %.80q", cm.ID, cm.Body)
		}
	}

	// The worker's record of the delivery is where the sweeper looks.
	sw, err := s.newSweeper()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		done, err := sw.isProcessed(ctx, guid)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper does not see the processed delivery: bus.DeliveryKey and the worker's record disagree")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
