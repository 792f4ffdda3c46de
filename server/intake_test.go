package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/fixtures"
)

// onboardIssue is an issues.opened payload asking to onboard model on issue n.
func onboardIssue(n int, model string) []byte {
	return fmt.Appendf(nil, `{"action":"opened","issue":{"number":%d,"title":"onboard %s","body":"","state":"open","author_association":"MEMBER","user":{"login":"alice","id":7,"type":"User"}},"repository":{"id":1,"name":"TensorRT-LLM","full_name":"NVIDIA/TensorRT-LLM","owner":{"login":"NVIDIA","id":2,"type":"Organization"}},"sender":{"login":"alice","id":7,"type":"User"},"installation":{"id":42}}`, n, model)
}

// TestIntakeThroughHandlers posts deliveries to the server as New wires it
// (handlers/ included; the command worker off, to look at the stream).
func TestIntakeThroughHandlers(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	s, base := startServer(t, cfg, func(s *Server) { s.noWorker = true })
	url := base + WebhookRoute
	secret := cfg.GitHub.WebhookSecret
	opened := onboardIssue(5, "Qwen/Qwen3-0.6B")
	// The octokit example issue asks for nothing: handled, nothing queued.
	unrelated := fixtures.Read(t, "github", "webhooks", "issues.opened.json")

	tests := []struct {
		name   string
		event  string
		guid   string
		body   []byte
		status int
		queued uint64
	}{
		{"onboard request", "issues", "g-1", opened, http.StatusOK, 1},
		{"same delivery again", "issues", "g-1", opened, http.StatusOK, 1},
		{"issue without a command", "issues", "g-2", unrelated, http.StatusOK, 1},
		{"payload of the wrong shape", "issues", "g-3", []byte(`{"action":"opened","issue":"five"}`), http.StatusBadRequest, 1},
		{"event no handler takes", "star", "g-4", []byte(`{"action":"created"}`), http.StatusAccepted, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, url, signed(secret, tc.event, tc.guid, tc.body), tc.body)
			if status != tc.status {
				t.Errorf("status = %d (%q), want %d", status, body, tc.status)
			}
			if got := commandCount(t, s); got != tc.queued {
				t.Errorf("commands queued = %d, want %d", got, tc.queued)
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, err := s.res.Commands.GetLastMsgForSubject(ctx, bus.CommandSubject)
	if err != nil {
		t.Fatal(err)
	}
	var got bus.Command
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatal(err)
	}
	want := bus.Command{
		Kind: bus.CmdOnboard, DeliveryID: "g-1", Event: "issues.opened", InstallationID: 42,
		Owner: "NVIDIA", Repo: "TensorRT-LLM", Issue: 5, Actor: "alice", ActorAssociation: "MEMBER", ModelID: "Qwen/Qwen3-0.6B",
	}
	if diff := cmp.Diff(got, want, cmpopts.IgnoreFields(bus.Command{}, "Received")); diff != "" {
		t.Errorf("queued command (-got +want):\n%s", diff)
	}
	if got.Received.IsZero() {
		t.Error("command has no Received time")
	}
}
