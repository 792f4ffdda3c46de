package clustertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/gittest"
	"github.com/nvidia/adbot/internal/gpu/gputest"
	"github.com/nvidia/adbot/internal/syncbuf"
	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/runners"
	"github.com/nvidia/adbot/runners/workspace"
	"github.com/nvidia/adbot/server"
)

// The repository the App is installed on, and who asks for onboardings.
const (
	owner        = "NVIDIA"
	repo         = "TensorRT-LLM"
	installation = 42
	maintainer   = "alice"
	model        = "Qwen/Qwen3-0.6B"
)

// rig is adbot serve and its runners on the cluster, with a fake GitHub, a
// fake Hub and a bare repository standing for TensorRT-LLM's remote.
type rig struct {
	t      *testing.T
	c      *cluster
	gh     *fakegithub.Server
	secret string
	hook   string
	remote string
	wf     *workflow
	logs   *syncbuf.Buffer
	logger zerolog.Logger
	srv    *server.Server
	res    *bus.Resources
	// stopServer stops adbot serve (once).
	stopServer func()
}

// newRig starts adbot serve against the cluster as the server user, with
// every stream and bucket replicated three ways.
func newRig(t *testing.T, c *cluster) *rig {
	t.Helper()
	r := &rig{t: t, c: c, gh: fakegithub.New(t), secret: randomHex(20), remote: gittest.RegistryRemote(t), wf: newWorkflow(), logs: &syncbuf.Buffer{}}
	r.gh.SetPermission(owner, repo, maintainer, "write")
	r.wf.pushed = func(branch, sha string) {
		r.gh.SetRef(owner, repo, "heads/"+branch, sha)
		for _, p := range r.gh.PullRequests(owner, repo) {
			if p.Head == branch {
				r.gh.SetPullHead(owner, repo, p.Number, sha)
			}
		}
	}
	r.logger = zerolog.New(zerolog.SyncWriter(r.logs)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("adbot log (last 20000 bytes):\n%s", tail(r.logs.String(), 20000))
		}
	})

	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.NATS.URL = c.url(serverUser)
	cfg.NATS.Replicas = 3
	cfg.NATS.ConnectTimeout = clusterWait
	cfg.GitHub.AppID = fakegithub.DefaultAppID
	cfg.GitHub.PrivateKey = string(fakegithub.AppKey())
	cfg.GitHub.WebhookSecret = r.secret
	cfg.GitHub.V3APIURL = r.gh.URL()
	cfg.Hub.Endpoint = newFakeHub(t).URL
	cfg.Sweeper.Disabled = true
	cfg.Server.MetricsAddress = "off"
	cfg.Workers = 4
	noSettle := time.Duration(0) // each remark goes out at once
	cfg.FeedbackSettle = &noSettle
	srv, err := server.New(cfg, server.WithLogger(r.logger.With().Str("side", "server").Logger()))
	if err != nil {
		t.Fatalf("server.New on the cluster: %v", err)
	}
	r.srv = srv
	_, r.res = srv.Bus()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	r.hook = "http://" + ln.Addr().String() + server.WebhookRoute
	ctx, cancel := context.WithCancel(r.logger.WithContext(context.Background()))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	var once sync.Once
	r.stopServer = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("Serve did not return within %s of cancel", wait)
			}
		})
	}
	t.Cleanup(r.stopServer)
	ready := "http://" + ln.Addr().String() + server.ReadyRoute
	waitFor(t, wait, "the server to be ready", func() bool {
		resp, err := httpClient.Get(ready)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

// runner is one runner daemon of the rig.
type runner struct {
	name string
	rn   *runners.Runner
	stop context.CancelFunc
	done chan error
	once sync.Once
}

// startRunner starts adbot runner with gpus mock H100s, dialing the cluster
// itself as the runner user, as on a GPU host.
func (r *rig) startRunner(name string, gpus int) *runner {
	t := r.t
	t.Helper()
	rn, err := runners.New(runners.Config{
		Name:          name,
		NATSURL:       r.c.url(runnerUser),
		DataDir:       t.TempDir(),
		Remote:        r.remote,
		GitHubAPIURL:  r.gh.URL(),
		DiskFloor:     -1,
		AdmitInterval: 50 * time.Millisecond,
		Pace:          -1,
	}, runners.Deps{NVML: gputest.H100(gpus), Workflow: r.wf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(r.logger.With().Str("side", "runner").Logger().WithContext(context.Background()))
	h := &runner{name: name, rn: rn, stop: stop, done: make(chan error, 1)}
	go func() { h.done <- rn.Run(ctx) }()
	t.Cleanup(func() { h.shutdown(t) })
	return h
}

// shutdown stops the runner gracefully: it takes no new cycle, finishes the
// running ones and withdraws its presence.
func (h *runner) shutdown(t *testing.T) {
	h.once.Do(func() {
		h.stop()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("runner %s: %v", h.name, err)
			}
		case <-time.After(wait):
			h.rn.Force()
			t.Errorf("runner %s did not stop within %s", h.name, wait)
		}
	})
}

// deliver signs body and posts it to the webhook until it is accepted, with
// the same delivery id each time, as GitHub's redelivery does (the server's
// sweeper asks for it); a 503 while the cluster elects a leader is expected.
// It returns how many attempts were refused.
func (r *rig) deliver(event, guid string, body []byte) int {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for refused := 0; ; refused++ {
		last := r.post(event, guid, body)
		if last == "" {
			return refused
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("delivery %s refused for %s; last answer: %s", guid, wait, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post makes one delivery attempt; it returns "" when the server accepted
// it, else what went wrong.
func (r *rig) post(event, guid string, body []byte) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := server.NewDeliveryRequest(ctx, r.hook, r.secret, event, guid, body)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.Status + " " + string(text)
	}
	return ""
}

// carriedOut reports whether the command worker has recorded delivery guid as done.
func (r *rig) carriedOut(ctx context.Context, guid string) bool {
	e, err := r.res.Deliveries.Get(ctx, bus.DeliveryKey(guid))
	if err != nil {
		return false
	}
	var rec struct {
		Done bool `json:"done"`
	}
	return json.Unmarshal(e.Value(), &rec) == nil && rec.Done
}

// job returns the issue's job, or nil while there is none or it cannot be read.
func (r *rig) job(ctx context.Context, issue int) *bus.Job {
	j, _, err := bus.GetJob(ctx, r.res.Jobs, bus.JobKey(owner, repo, issue))
	if err != nil {
		return nil
	}
	return j
}

// issueOpened is GitHub's real issues.opened payload, moved to
// NVIDIA/TensorRT-LLM and installation 42, for an issue asking to onboard model.
func issueOpened(t *testing.T, number int) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixtures.Read(t, "github", "webhooks", "issues.opened.json"), &m); err != nil {
		t.Fatalf("fixture issues.opened.json: %v", err)
	}
	rp := m["repository"].(map[string]any)
	rp["name"], rp["full_name"] = repo, owner+"/"+repo
	rp["owner"].(map[string]any)["login"] = owner
	m["installation"] = map[string]any{"id": installation}
	is := m["issue"].(map[string]any)
	is["number"], is["id"], is["title"], is["body"], is["author_association"] = number, 7000000+number, "onboard "+model, "", "MEMBER"
	for _, u := range []map[string]any{is["user"].(map[string]any), m["sender"].(map[string]any)} {
		u["login"], u["type"], u["id"] = maintainer, "User", 5007
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// prComment is GitHub's real issue_comment.created payload for comment c,
// written by the maintainer on pull request c.Issue.
func prComment(t *testing.T, c fakegithub.Comment) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixtures.Read(t, "github", "webhooks", "issue_comment.created-2.json"), &m); err != nil {
		t.Fatalf("fixture issue_comment.created-2.json: %v", err)
	}
	rp := m["repository"].(map[string]any)
	rp["name"], rp["full_name"] = repo, owner+"/"+repo
	rp["owner"].(map[string]any)["login"] = owner
	m["installation"] = map[string]any{"id": installation}
	m["issue"].(map[string]any)["number"] = c.Issue
	cm := m["comment"].(map[string]any)
	cm["id"], cm["body"], cm["author_association"] = c.ID, c.Body, "MEMBER"
	for _, u := range []map[string]any{cm["user"].(map[string]any), m["sender"].(map[string]any)} {
		u["login"], u["type"], u["id"] = maintainer, "User", 5007
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newFakeHub serves the Hub's recorded answer for Qwen/Qwen3-0.6B.
func newFakeHub(t *testing.T) *httptest.Server {
	t.Helper()
	api := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "api.json")
	config := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "config.json")
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/models/"+model || strings.HasPrefix(r.URL.Path, "/api/models/"+model+"/revision/"):
			_, _ = w.Write(api)
		case strings.HasPrefix(r.URL.Path, "/"+model+"/resolve/") && strings.HasSuffix(r.URL.Path, "/config.json"):
			_, _ = w.Write(config)
		default:
			w.Header().Set("X-Error-Code", "RepoNotFound")
			http.Error(w, `{"error":"Repository not found"}`, http.StatusUnauthorized)
		}
	}))
	t.Cleanup(hub.Close)
	return hub
}

// workflow stands for the onboarding workflow: a registry edit committed,
// an end-to-end step that asks the server for a token and may be held at a
// gate, then the branch pushed, the pull request opened, the run's log posted
// and a check run made. It counts what each job's cycle did.
type workflow struct {
	mu sync.Mutex
	// runs counts Run calls per job and cycle ("job/cycle"), done the
	// pull-request phase bodies that completed.
	runs, done map[string]int
	// gate holds the end-to-end step until it is closed; entering it sends
	// the job on entered.
	gate    chan struct{}
	entered chan string
	// hold, while open, holds feedback cycles the same way, sending the
	// job on answering.
	hold      chan struct{}
	answering chan string
	pushed    func(branch, sha string)
}

func newWorkflow() *workflow {
	return &workflow{runs: map[string]int{}, done: map[string]int{}, gate: make(chan struct{}), entered: make(chan string, 64),
		hold: make(chan struct{}), answering: make(chan string, 64), pushed: func(string, string) {}}
}

func (w *workflow) count(m map[string]int, key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m[key]++
}

func (w *workflow) counts() (runs, done map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	runs, done = map[string]int{}, map[string]int{}
	for k, v := range w.runs {
		runs[k] = v
	}
	for k, v := range w.done {
		done[k] = v
	}
	return runs, done
}

// Run implements runners.Workflow.
func (w *workflow) Run(ctx context.Context, c *runners.Cycle) error {
	id := c.Msg.MsgID()
	w.count(w.runs, id)
	if c.Msg.Kind == bus.KindFeedback {
		return w.answer(ctx, c)
	}
	err := c.Phase(ctx, "registry", func(ctx context.Context) error {
		f := filepath.Join(c.Worktree.Dir, "examples", "auto_deploy", "model_registry", "models.yaml")
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "- name: "+c.Msg.ModelID+"\n") {
			return nil // made by an earlier run of the cycle
		}
		entry := fmt.Sprintf("# --- Qwen3 (Apr 2025) ---\n- name: %s\n  yaml_extra: [dashboard_default.yaml, world_size_1.yaml]\n", c.Msg.ModelID)
		if err := os.WriteFile(f, append(b, entry...), 0o644); err != nil {
			return err
		}
		if _, err := workspace.Git(ctx, c.Worktree.Dir, author, "add", "-A"); err != nil {
			return err
		}
		_, err = workspace.Git(ctx, c.Worktree.Dir, author, "commit", "--quiet", "-m", fmt.Sprintf("[AutoDeploy] Onboard %s (#%d)", c.Msg.ModelID, c.Msg.Issue))
		return err
	})
	if err != nil {
		return err
	}
	err = c.Phase(ctx, "e2e", func(ctx context.Context) error {
		w.entered <- c.Msg.JobKey
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.gate:
		}
		// The token broker answers across the cluster, for the lease holder.
		_, err := c.Token(ctx, map[string]string{"contents": "read"})
		return err
	})
	if err != nil {
		return err
	}
	return c.Phase(ctx, "pull-request", func(ctx context.Context) error {
		if _, err := c.Push(ctx, false); err != nil {
			return err
		}
		head := c.Job().HeadSHA
		w.pushed(c.Worktree.Branch, head)
		pr, err := c.Reporter.OpenPR(ctx, "pr", runners.NewPR{
			Title: "[AutoDeploy] Onboard " + c.Msg.ModelID,
			Body:  fmt.Sprintf("Onboards `%s` into AutoDeploy.\n\nCloses #%d", c.Msg.ModelID, c.Msg.Issue),
		})
		if err != nil {
			return err
		}
		if _, err := c.Reporter.Comment(ctx, pr, "e2e/log", comments.Post{
			Title: fmt.Sprintf("AutoDeploy end-to-end run of #%d, cycle %d", c.Msg.Issue, c.Msg.Number),
			Intro: "`build_and_run_ad.py --model " + c.Msg.ModelID + "` answered every prompt.",
			Log:   "[12/20/2025-03:35:50] [TRT-LLM AUTO-DEPLOY] [I] [PROMPT 0] How big is the universe? : Very big.\n",
		}); err != nil {
			return err
		}
		if _, err := c.Reporter.CheckRun(ctx, "e2e", runners.CheckRun{
			Name: "AutoDeploy end-to-end", HeadSHA: head, Status: "completed", Conclusion: "success",
			Title: "1 prompt answered", Summary: "The end-to-end run answered its prompt.",
		}); err != nil {
			return err
		}
		w.count(w.done, id)
		return nil
	})
}

// answer is a feedback cycle: one commit naming every remark, pushed, and a
// reply on the pull request.
func (w *workflow) answer(ctx context.Context, c *runners.Cycle) error {
	return c.Phase(ctx, "feedback", func(ctx context.Context) error {
		w.answering <- c.Msg.JobKey
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.hold:
		}
		var msg strings.Builder
		fmt.Fprintf(&msg, "Address review feedback (cycle %d)\n\n", c.Msg.Number)
		for _, f := range c.Msg.Feedback {
			fmt.Fprintf(&msg, "- %s\n", f.Body)
		}
		f := filepath.Join(c.Worktree.Dir, "REVIEW_NOTES.md")
		if err := os.WriteFile(f, []byte(msg.String()), 0o644); err != nil {
			return err
		}
		if _, err := workspace.Git(ctx, c.Worktree.Dir, author, "add", "-A"); err != nil {
			return err
		}
		if _, err := workspace.Git(ctx, c.Worktree.Dir, author, "commit", "--quiet", "-m", msg.String()); err != nil {
			return err
		}
		if _, err := c.Push(ctx, false); err != nil {
			return err
		}
		w.pushed(c.Worktree.Branch, c.Job().HeadSHA)
		if _, err := c.Reporter.CommentText(ctx, c.Job().PR, "feedback/answer", "[AGENT] "+msg.String()); err != nil {
			return err
		}
		w.count(w.done, c.Msg.MsgID())
		return nil
	})
}

var author = []string{
	"GIT_AUTHOR_NAME=adbot", "GIT_AUTHOR_EMAIL=adbot@users.noreply.github.com",
	"GIT_COMMITTER_NAME=adbot", "GIT_COMMITTER_EMAIL=adbot@users.noreply.github.com",
}
