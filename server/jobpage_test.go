package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/server/jobpage"
)

// TestJobPageWiring serves the job pages from a whole server: a job created
// in the bucket shows on /jobs for a loopback client, other clients get 403,
// and with the pages off there is no route.
func TestJobPageWiring(t *testing.T) {
	gh := fakegithub.New(t)
	for _, tc := range []struct {
		mode   string
		remote string
		status int
	}{
		{"", "127.0.0.1:4000", http.StatusOK},
		{"", "198.51.100.7:4000", http.StatusForbidden},
		{jobpage.ModeOff, "127.0.0.1:4000", http.StatusNotFound},
	} {
		t.Run(tc.mode+" "+tc.remote, func(t *testing.T) {
			cfg := testConfig(t, gh.URL())
			cfg.JobsPage.Mode = tc.mode
			s, base := startServer(t, cfg, func(s *Server) { s.noWorker = true })
			_, res := s.Bus()
			key := bus.JobKey("acme", "trt", 5)
			if _, err := bus.CreateJob(context.Background(), res.Jobs, &bus.Job{Key: key, Owner: "acme", Repo: "trt", Issue: 5, ModelID: "org/Wired", Status: bus.StatusQueued}); err != nil {
				t.Fatal(err)
			}
			if tc.status == http.StatusOK {
				// Over the real listener, as a browser on this host.
				deadline := time.Now().Add(20 * time.Second)
				for {
					resp, err := http.Get(base + jobpage.Route)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK && strings.Contains(string(b), "org/Wired") {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("GET /jobs: %s without the job: %s", resp.Status, b)
					}
					time.Sleep(20 * time.Millisecond)
				}
				return
			}
			req := httptest.NewRequest(http.MethodGet, jobpage.Route, nil)
			req.RemoteAddr = tc.remote
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Errorf("GET /jobs from %s: %d, want %d", tc.remote, w.Code, tc.status)
			}
		})
	}
}

func TestJobPageConfig(t *testing.T) {
	env := map[string]string{
		"ADBOT_JOBS_PAGE": "oauth", "ADBOT_JOBS_ALLOW": "alice, bob",
		"GITHUB_OAUTH_CLIENT_ID": "Iv1.x", "GITHUB_OAUTH_CLIENT_SECRET": "s3",
	}
	c, err := LoadConfig("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := jobpage.Config{Mode: "oauth", Allow: []string{"alice", "bob"}, OAuthClientID: "Iv1.x", OAuthClientSecret: "s3"}
	if diff := cmp.Diff(c.JobsPage, want); diff != "" {
		t.Errorf("JobsPage (-got +want):\n%s", diff)
	}
	if d := DefaultConfig().JobsPage.Mode; d != jobpage.ModeLoopback {
		t.Errorf("default mode %q, want loopback", d)
	}
	c.JobsPage.Allow = nil
	if err := c.Validate(false); err == nil || !strings.Contains(err.Error(), "ADBOT_JOBS_ALLOW") {
		t.Errorf("Validate with oauth and no logins: %v, want an error naming ADBOT_JOBS_ALLOW", err)
	}
}
