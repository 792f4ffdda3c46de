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
	"github.com/nvidia/adbot/runners"
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

// TestJobPageStreamOutlivesTimeouts keeps a job's event stream open past the
// server's read and write timeouts: output published after them still arrives
// on the same connection.
func TestJobPageStreamOutlivesTimeouts(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	cfg.Server.ReadTimeout, cfg.Server.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond
	s, base := startServer(t, cfg, func(s *Server) { s.noWorker = true })
	nc, _ := s.Bus()
	key := bus.JobKey("acme", "trt", 6)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+jobpage.Route+"/"+key+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream: %s", resp.Status)
	}
	time.Sleep(3 * cfg.Server.WriteTimeout) // past both timeouts
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 4096)
		var all strings.Builder
		for {
			n, err := resp.Body.Read(b)
			all.Write(b[:n])
			if strings.Contains(all.String(), "still here") || err != nil {
				got <- all.String()
				return
			}
		}
	}()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// Published until it arrives: the page may subscribe after the first.
		if err := nc.Publish(runners.LogSubjectPrefix+key, []byte(`{"cycle":1,"step":"pytest-1","seq":0,"stream":"stdout","data":"still here\n"}`)); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if !strings.Contains(s, "still here") {
				t.Fatalf("stream ended before the output came: %q", s)
			}
			return
		case <-deadline:
			t.Fatal("gave up waiting for output on the stream")
		case <-tick.C:
		}
	}
}
