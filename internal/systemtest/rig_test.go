package systemtest_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/gittest"
	"github.com/nvidia/adbot/internal/gpu/gputest"
	"github.com/nvidia/adbot/internal/syncbuf"
	"github.com/nvidia/adbot/onboarding/statuscomment"
	"github.com/nvidia/adbot/runners"
	"github.com/nvidia/adbot/server"
)

// The repository the App is installed on, and the people in the scenarios.
const (
	owner        = "NVIDIA"
	repo         = "TensorRT-LLM"
	installation = 42
	maintainer   = "alice"   // write permission, MEMBER
	stranger     = "mallory" // no permission, NONE
	qwen         = "Qwen/Qwen3-0.6B"
	remoteCoder  = "acme/RemoteCoder-0.6B" // Qwen3-0.6B's answer with an auto_map
	qwen8B       = "Qwen/Qwen3-8B"         // Qwen3-0.6B's answer with Qwen3-8B's size
	wait         = 30 * time.Second        // the bound on every poll
)

// appKey is an App private key made once per test binary.
func appKey(t testing.TB) string {
	t.Helper()
	return string(fakegithub.AppKey())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fakeHub serves the Hub's recorded answer for Qwen/Qwen3-0.6B and a copy of
// it whose config has an auto_map, and counts every request.
type fakeHub struct {
	srv      *httptest.Server
	requests atomic.Int64
	// unavailable answers this many requests with 503 first.
	unavailable atomic.Int64
}

func newFakeHub(t testing.TB) *fakeHub {
	t.Helper()
	api := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "api.json")
	config := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "config.json")
	var m map[string]any
	if err := json.Unmarshal(api, &m); err != nil {
		t.Fatal(err)
	}
	m["id"], m["modelId"] = remoteCoder, remoteCoder
	m["config"].(map[string]any)["auto_map"] = map[string]any{
		"AutoConfig":           "configuration_remotecoder.RemoteCoderConfig",
		"AutoModelForCausalLM": "modeling_remotecoder.RemoteCoderForCausalLM",
	}
	withAutoMap, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Qwen3-8B's size (8,190,735,360 parameters) on the same answer: two GPUs.
	delete(m["config"].(map[string]any), "auto_map")
	m["id"], m["modelId"] = qwen8B, qwen8B
	m["safetensors"] = map[string]any{"parameters": map[string]any{"BF16": 8190735360}, "total": 8190735360}
	eightB, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string][]byte{"/api/models/" + qwen: api, "/api/models/" + remoteCoder: withAutoMap, "/api/models/" + qwen8B: eightB}
	h := &fakeHub{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		if h.unavailable.Add(-1) >= 0 {
			http.Error(w, `{"error":"Service Unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		// Files of a model: its config.json as recorded, any other file a
		// line of text standing for it.
		if id, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/resolve/"); ok {
			if _, known := answers["/api/models/"+id]; !known {
				w.Header().Set("X-Error-Code", "RepoNotFound")
				http.Error(w, `{"error":"Repository not found"}`, http.StatusUnauthorized)
				return
			}
			_, file, _ := strings.Cut(rest, "/")
			if file == "config.json" {
				_, _ = w.Write(config)
				return
			}
			_, _ = io.WriteString(w, "stand-in for "+file+" of "+id+"\n")
			return
		}
		path, _, _ := strings.Cut(r.URL.Path, "/revision/")
		b, ok := answers[path]
		if !ok {
			w.Header().Set("X-Error-Code", "RepoNotFound")
			http.Error(w, `{"error":"Repository not found"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// rig is one whole adbot: server, runner and the fakes around them.
type rig struct {
	t      testing.TB
	gh     *fakegithub.Server
	hub    *fakeHub
	secret string
	hook   string
	srv    *server.Server
	res    *bus.Resources
	remote string
	mirror string
	wf     *workflow
	logs   *syncbuf.Buffer
	logger zerolog.Logger
	cfg    server.Config
	// flow, when set, is the workflow the rig's runners run instead of wf
	// (the real onboarding workflow), and runnerEnv the variables their
	// cycles' processes inherit.
	flow      runners.Workflow
	runnerEnv []string
	// nvml is the runners' GPU library (go-nvml's mock of one H100 when nil).
	nvml nvml.Interface
	// stopServer stops the server now serving (once).
	stopServer func()
	first      *runner
}

func newRig(t testing.TB, opts ...func(*rig)) *rig {
	t.Helper()
	r := &rig{t: t, gh: fakegithub.New(t), hub: newFakeHub(t), secret: randomHex(20), logs: &syncbuf.Buffer{},
		wf: newWorkflow()}
	for _, o := range opts {
		o(r)
	}
	if r.remote == "" {
		r.remote = gittest.RegistryRemote(t)
	}
	// Checked last, once everything has stopped writing (cleanups run in reverse).
	t.Cleanup(r.checkPromises)
	r.gh.SetPermission(owner, repo, maintainer, "write")
	// GitHub's side of a push: the ref, and the head of a pull request from it.
	r.wf.pushed = func(branch, sha string) {
		r.gh.SetRef(owner, repo, "heads/"+branch, sha)
		for _, p := range r.gh.PullRequests(owner, repo) {
			if p.Head == branch {
				r.gh.SetPullHead(owner, repo, p.Number, sha)
			}
		}
	}
	logger := zerolog.New(zerolog.SyncWriter(r.logs)).Level(zerolog.DebugLevel).With().Timestamp().Logger()

	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.NATS.Embedded.Host = "127.0.0.1"
	cfg.NATS.Embedded.Port = freePort(t) // fixed, so runners find it again after a restart
	cfg.GitHub.AppID = fakegithub.DefaultAppID
	cfg.GitHub.PrivateKey = appKey(t)
	cfg.GitHub.WebhookSecret = r.secret
	cfg.GitHub.V3APIURL = r.gh.URL()
	cfg.Hub.Endpoint = r.hub.srv.URL
	cfg.Sweeper.Disabled = true
	cfg.Server.MetricsAddress = "off"
	cfg.Workers = 4
	r.cfg = cfg
	r.logger = logger
	t.Cleanup(func() { r.stopServer() })
	r.startServer()
	t.Cleanup(r.checkLogStore)
	r.first = r.startRunner("gpu-host-1")
	r.mirror = r.first.mirror
	return r
}

// startServer builds and serves adbot serve from r.cfg on a loopback port.
func (r *rig) startServer() {
	t := r.t
	t.Helper()
	srv, err := server.New(r.cfg, server.WithLogger(r.logger))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	r.srv = srv
	_, r.res = srv.Bus()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	r.hook = "http://" + ln.Addr().String() + server.WebhookRoute
	ctx, cancel := context.WithCancel(r.logger.With().Str("side", "server").Logger().WithContext(context.Background()))
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
			case <-time.After(20 * time.Second):
				t.Errorf("Serve did not return within 20s of cancel")
			}
		})
	}
	ready := "http://" + ln.Addr().String() + server.ReadyRoute
	r.poll("the server to be ready", func() bool {
		resp, err := http.Get(ready)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// restartServer stops the server and starts it again on the same data
// directory and NATS port, as a deploy does.
func (r *rig) restartServer() {
	r.t.Helper()
	r.stopServer()
	r.startServer()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runner is one runner daemon of the rig.
type runner struct {
	name   string
	mirror string
	rn     *runners.Runner
	stop   context.CancelFunc
	done   chan error
	once   sync.Once
}

// startRunner starts a runner with one GPU, its own data directory and its
// own NATS connection, as adbot runner on a GPU host does.
func (r *rig) startRunner(name string) *runner {
	t := r.t
	t.Helper()
	nc, err := nats.Connect(r.srv.NATSURL(), nats.Name("systemtest "+name))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	rn, err := runners.New(runners.Config{
		Name:          name,
		DataDir:       data,
		Remote:        r.remote,
		GitHubAPIURL:  r.gh.URL(),
		DiskFloor:     -1,
		AdmitInterval: 50 * time.Millisecond,
		Pace:          -1,
		PassEnv:       r.runnerEnv,
	}, runners.Deps{Conn: nc, NVML: cmp.Or[nvml.Interface](r.nvml, gputest.H100(1)), Workflow: cmp.Or[runners.Workflow](r.flow, r.wf)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(r.logger.With().Str("side", "runner").Logger().WithContext(context.Background()))
	h := &runner{name: name, mirror: filepath.Join(data, "trtllm.git"), rn: rn, stop: stop, done: make(chan error, 1)}
	go func() { h.done <- rn.Run(ctx) }()
	t.Cleanup(func() {
		h.kill(t)
		nc.Close()
	})
	return h
}

// kill stops the runner at once: its running cycles are given back.
func (h *runner) kill(t testing.TB) {
	h.once.Do(func() {
		h.stop()
		h.rn.Force()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("runner %s: %v", h.name, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("runner %s did not stop within 20s", h.name)
		}
	})
}

// waitStatus waits, bounded, until status comment id holds every one of
// wants: the server's status writer follows the job record a moment after
// it changes. Failing, it says what and shows the comment.
func (r *rig) waitStatus(id int64, what string, wants ...string) {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		c, _ := r.gh.Comment(id)
		ok := true
		for _, w := range wants {
			ok = ok && strings.Contains(c.Body, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s (after %s):\n%s", what, wait, c.Body)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// poll waits, bounded, until cond holds.
func (r *rig) poll(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("gave up after %s waiting for %s", wait, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// deliver signs body and posts it to the webhook as GitHub does.
func (r *rig) deliver(event, guid string, body []byte) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := server.NewDeliveryRequest(ctx, r.hook, r.secret, event, guid, body)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("deliver %s %s: %v", event, guid, err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		r.t.Fatalf("deliver %s %s: %s %s", event, guid, resp.Status, text)
	}
}

// carriedOut reports whether the command worker has recorded delivery guid as done.
func (r *rig) carriedOut(guid string) bool {
	e, err := r.res.Deliveries.Get(context.Background(), bus.DeliveryKey(guid))
	if err != nil {
		return false
	}
	var rec struct {
		Done bool `json:"done"`
	}
	return json.Unmarshal(e.Value(), &rec) == nil && rec.Done
}

// deliverAndWait delivers and waits until the worker has carried it out.
func (r *rig) deliverAndWait(event, guid string, body []byte) {
	r.t.Helper()
	r.deliver(event, guid, body)
	r.poll("delivery "+guid+" ("+event+") to be carried out", func() bool { return r.carriedOut(guid) })
}

// job returns the issue's job, or nil.
func (r *rig) job(issue int) *bus.Job {
	r.t.Helper()
	return bustest.Job(r.t, r.res, bus.JobKey(owner, repo, issue))
}

// waitJob waits until the issue's job satisfies cond and returns it.
func (r *rig) waitJob(issue int, what string, cond func(*bus.Job) bool) *bus.Job {
	r.t.Helper()
	var j *bus.Job
	r.poll("job of #"+itoa(issue)+": "+what, func() bool {
		j = r.job(issue)
		return j != nil && cond(j)
	})
	return j
}

// cyclesPublished is how many cycles ever reached the cycle stream.
func (r *rig) cyclesPublished() uint64 {
	r.t.Helper()
	info, err := r.res.Cycles.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.LastSeq
}

// commandsPublished is how many commands ever reached the command stream
// (a de-duplicated delivery adds none).
func (r *rig) commandsPublished() uint64 {
	r.t.Helper()
	info, err := r.res.Commands.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.LastSeq
}

// idle reports whether no cycle waits or is held.
func (r *rig) idle() bool { return bustest.CyclesIdle(r.res) }

// leased reports whether a runner holds the issue's job.
func (r *rig) leased(issue int) bool {
	_, err := r.res.Leases.Get(context.Background(), bus.JobKey(owner, repo, issue))
	return !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted)
}

// botComments are the comments the App wrote on an issue or pull request.
func (r *rig) botComments(number int) []fakegithub.Comment {
	var out []fakegithub.Comment
	for _, c := range r.gh.Comments(owner, repo, number) {
		if c.Bot {
			out = append(out, c)
		}
	}
	return out
}

// statusComments are the bot's comments on issue that carry a status marker.
func (r *rig) statusComments(issue int) []fakegithub.Comment {
	var out []fakegithub.Comment
	for _, c := range r.botComments(issue) {
		if strings.Contains(c.Body, statuscomment.Marker(bus.JobKey(owner, repo, issue))) {
			out = append(out, c)
		}
	}
	return out
}

// statusEdits are the bodies the status comment id was edited to, in order.
func (r *rig) statusEdits(id int64) []string {
	var out []string
	suffix := "/issues/comments/" + itoa64(id)
	for _, q := range r.gh.Requests() {
		if q.Method == http.MethodPatch && strings.HasSuffix(q.Path, suffix) {
			var b struct {
				Body string `json:"body"`
			}
			_ = json.Unmarshal(q.Body, &b)
			out = append(out, b.Body)
		}
	}
	return out
}

var commentPath = regexp.MustCompile(`^/repos/[^/]+/[^/]+/issues/(\d+/comments|comments/\d+)$`)

// checkPromises holds the whole run to what the bot promises everywhere:
// every comment it writes begins [AGENT], no comment body is posted twice,
// and no token (nor the webhook secret or the App key) reaches a comment, a
// pull request, a check run or the log.
func (r *rig) checkPromises() {
	t := r.t
	secrets := []string{r.secret}
	for _, tr := range r.gh.TokenRequests() {
		secrets = append(secrets, tr.Token)
	}
	// Runners' tokens (the ones that name permissions) are scoped to the
	// job's one repository and to what reporting and pushing need.
	allowed := map[string]bool{"contents": true, "issues": true, "pull_requests": true, "checks": true}
	for _, tr := range r.gh.TokenRequests() {
		if tr.Permissions == nil {
			continue // the server's own installation client
		}
		if !slices.Equal(tr.Repositories, []string{repo}) || len(tr.RepositoryIDs) != 0 {
			t.Errorf("a runner's token is not scoped to %s alone: %v %v", repo, tr.Repositories, tr.RepositoryIDs)
		}
		for p, level := range tr.Permissions {
			if !allowed[p] || (level != "read" && level != "write") {
				t.Errorf("a runner's token grants %s:%s", p, level)
			}
		}
	}
	keyBody := strings.Join(strings.Split(appKey(t), "\n")[1:3], "")
	secrets = append(secrets, keyBody[:40])
	numbers := map[int]bool{}
	for _, q := range r.gh.Requests() {
		for _, s := range secrets {
			if bytes.Contains(q.Body, []byte(s)) {
				t.Errorf("%s %s sends a secret to GitHub in its body: %.200s", q.Method, q.Path, q.Body)
			}
		}
		m := commentPath.FindStringSubmatch(q.Path)
		if m == nil || (q.Method != http.MethodPost && q.Method != http.MethodPatch) {
			continue
		}
		if n, ok := strings.CutSuffix(m[1], "/comments"); ok {
			i, _ := strconv.Atoi(n)
			numbers[i] = true
		}
		var b struct {
			Body string `json:"body"`
		}
		if err := json.Unmarshal(q.Body, &b); err != nil {
			t.Errorf("%s %s: body is not a comment: %v", q.Method, q.Path, err)
			continue
		}
		if !strings.HasPrefix(b.Body, "[AGENT]") {
			t.Errorf("%s %s: comment does not begin [AGENT]: %.120q", q.Method, q.Path, b.Body)
		}
	}
	// What GitHub holds: no comment of the bot's there twice.
	for n := range numbers {
		seen := map[string]bool{}
		for _, c := range r.botComments(n) {
			if seen[c.Body] {
				t.Errorf("#%d: the same comment posted twice: %.200q", n, c.Body)
			}
			seen[c.Body] = true
		}
	}
	if !r.gh.Validating() {
		t.Log("GitHub's OpenAPI description is absent: requests were not validated")
	}
	logs := r.logs.String()
	if logs == "" {
		t.Error("no log was captured")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds a secret %.8s…", s)
		}
	}
	if t.Failed() {
		tail := logs
		if len(tail) > 20000 {
			tail = tail[len(tail)-20000:]
		}
		t.Logf("log tail:\n%s", tail)
	}
}

// checkLogStore holds the runners' logs in the object store to the same
// promise: no secret in them. It runs once the runners have stopped, while
// the server's NATS still answers.
func (r *rig) checkLogStore() {
	t := r.t
	secrets := []string{r.secret}
	for _, tr := range r.gh.TokenRequests() {
		secrets = append(secrets, tr.Token)
	}
	ctx := context.Background()
	if objs, err := r.res.Logs.List(ctx); err == nil {
		for _, o := range objs {
			b, err := r.res.Logs.GetBytes(ctx, o.Name)
			if err != nil {
				t.Errorf("read log %s: %v", o.Name, err)
				continue
			}
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("log %s in the object store holds a secret %.8s…", o.Name, s)
				}
			}
		}
	} else if !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Errorf("list the log store: %v", err)
	}
}

func itoa(n int) string     { return strconv.Itoa(n) }
func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
