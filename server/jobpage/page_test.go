package jobpage

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/runners"
)

// testClock is the fixed "now" of rendered pages.
var testClock = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rig is a page on an embedded NATS server, running until the test ends.
type rig struct {
	page *Page
	nc   *nats.Conn
	res  *bus.Resources
}

func newRig(t *testing.T, cfg Config, d Deps) *rig {
	t.Helper()
	_, nc, res := bustest.Start(t)
	d.Conn, d.Jobs, d.Logs = nc, res.Jobs, res.Logs
	if d.Now == nil {
		d.Now = func() time.Time { return testClock }
	}
	if d.WebURL == "" {
		d.WebURL = "https://github.com"
	}
	p, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "the job list to be read", func() bool { _, ok := p.hub.list(); return ok })
	return &rig{page: p, nc: nc, res: res}
}

// waitFor polls cond with a generous deadline: it asserts that something
// happens, not how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// putJob stores j and waits until the page has it.
func (r *rig) putJob(t *testing.T, j *bus.Job) {
	t.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.res.Jobs.Put(context.Background(), j.Key, b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job "+j.Key+" on the page", func() bool {
		got, _, _ := r.page.hub.job(j.Key)
		return got != nil && got.Updated.Equal(j.Updated) && got.Phase == j.Phase && got.Status == j.Status
	})
}

// publish sends a log chunk as the runner does and waits until the page has it.
func (r *rig) publish(t *testing.T, key string, c runners.LogChunk) {
	t.Helper()
	_, gen, before := r.page.hub.job(key)
	b, _ := json.Marshal(c)
	if err := r.nc.Publish(runners.LogSubjectPrefix+key, b); err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a chunk on the page", func() bool {
		_, g, items := r.page.hub.job(key)
		return g != gen || lastN(items) > lastN(before)
	})
}

func lastN(items []Item) uint64 {
	if len(items) == 0 {
		return 0
	}
	return items[len(items)-1].N
}

// get asks the page for path as a client on remote would.
func (r *rig) get(t *testing.T, path, remote string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = remote
	for k, v := range hdr {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	r.page.Handler().ServeHTTP(w, req)
	return w
}

const local = "127.0.0.1:50000"

// sampleJob is a job with outside text where escaping matters.
func sampleJob() *bus.Job {
	return &bus.Job{
		Key: "acme.trt.42", Owner: "acme", Repo: "trt", Issue: 42,
		ModelID: `org/Model<script>alert(1)</script>`, Revision: "0123abcd", GPUs: 2,
		Status: bus.StatusRunning, Runner: "gpu-host-1", RunnerGPUs: []int{0, 1}, Cycle: 1, PR: 7,
		Phase:   "survey",
		Posted:  map[string]int64{runners.PhaseKey(1, "gather"): 100, runners.PhaseKey(1, "survey"): 200},
		Note:    `waiting for "4" <b>GPUs</b>`,
		Created: testClock.Add(-95 * time.Minute), Updated: testClock.Add(-time.Minute), BudgetUSD: 1.5,
	}
}

func TestPagesRender(t *testing.T) {
	r := newRig(t, Config{}, Deps{})
	j := sampleJob()
	r.putJob(t, j)
	done := &bus.Job{Key: "acme.trt.9", Owner: "acme", Repo: "trt", Issue: 9, ModelID: "org/Old", Status: bus.StatusDone, Cycle: 2, Created: testClock.Add(-72 * time.Hour)}
	r.putJob(t, done)
	r.publish(t, j.Key, runners.LogChunk{Cycle: 1, Step: "pytest-1", Seq: 0, Stream: "stdout", Data: "test_x <PASSED> & done\n"})
	r.publish(t, j.Key, runners.LogChunk{Cycle: 1, Step: "agent-model-1", Seq: 0, Stream: "stdout",
		Data: `{"type":"assistant","message":{"content":[{"type":"text","text":"</div><img src=x onerror=alert(1)>"}]}}` + "\n"})
	if _, err := r.res.Logs.PutString(context.Background(), LogObjectName(j.Key, 1, "001-agent-model-1.stdout"), "<html>log</html>\n"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path string
		status     int
		golden     string
	}{
		{"list", "/jobs", http.StatusOK, "list.html"},
		{"job", "/jobs/acme.trt.42", http.StatusOK, "job.html"},
		{"missing job", "/jobs/acme.trt.43", http.StatusNotFound, "missing.html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := r.get(t, tc.path, local, nil)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			body := w.Body.String()
			// The event stream's generation changes with every run.
			if _, gen, _ := r.page.hub.job(j.Key); gen != "" {
				body = strings.ReplaceAll(body, gen, "GEN")
			}
			golden.Check(t, tc.golden, []byte(body))
			for _, bad := range []string{"<script>alert", "<img src=x", "<b>GPUs", "<PASSED>", "<html>log"} {
				if strings.Contains(body, bad) {
					t.Errorf("page holds unescaped %q", bad)
				}
			}
			if got := w.Header().Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") {
				t.Errorf("Content-Security-Policy %q lets other scripts run", got)
			}
		})
	}
}

func TestLogFile(t *testing.T) {
	r := newRig(t, Config{}, Deps{})
	name := LogObjectName("acme.trt.42", 2, "003-pytest-1.stdout")
	if _, err := r.res.Logs.PutString(context.Background(), name, "<script>x</script>\n"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/jobs/acme.trt.42/logs/2/003-pytest-1.stdout", http.StatusOK, "<script>x</script>\n"},
		{"/jobs/acme.trt.42/logs/1/003-pytest-1.stdout", http.StatusNotFound, "no such log\n"},
		{"/jobs/acme.trt.42/logs/x/003-pytest-1.stdout", http.StatusNotFound, "no such log\n"},
		{"/jobs/acme.trt.42/logs/2/%2e%2e", http.StatusNotFound, "no such log\n"},
		{"/jobs/acme.trt.42/logs/2/a%2Fb", http.StatusNotFound, "no such log\n"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := r.get(t, tc.path, local, nil)
			if diff := cmp.Diff([]any{w.Code, w.Body.String()}, []any{tc.status, tc.body}); diff != "" {
				t.Errorf("answer (-got +want):\n%s", diff)
			}
			if w.Code == http.StatusOK {
				// Served as text the browser must not sniff into HTML.
				if diff := cmp.Diff([]string{w.Header().Get("Content-Type"), w.Header().Get("X-Content-Type-Options")}, []string{"text/plain; charset=utf-8", "nosniff"}); diff != "" {
					t.Errorf("headers (-got +want):\n%s", diff)
				}
			}
		})
	}
}

func TestLoopbackOnly(t *testing.T) {
	r := newRig(t, Config{}, Deps{})
	for _, tc := range []struct {
		name   string
		remote string
		hdr    http.Header
		status int
	}{
		{"ipv4 loopback", "127.0.0.1:1234", nil, http.StatusOK},
		{"ipv6 loopback", "[::1]:1234", nil, http.StatusOK},
		{"other host", "10.1.2.3:1234", nil, http.StatusForbidden},
		{"public address", "203.0.113.9:443", nil, http.StatusForbidden},
		{"through a local proxy", "127.0.0.1:1234", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, http.StatusForbidden},
		{"through a local proxy, Forwarded", "127.0.0.1:1234", http.Header{"Forwarded": {"for=203.0.113.9"}}, http.StatusForbidden},
		{"no address", "", nil, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/jobs", "/jobs/-/live.js", "/jobs/acme.trt.1/logs/1/x"} {
				w := r.get(t, path, tc.remote, tc.hdr)
				if tc.status == http.StatusForbidden {
					if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "ADBOT_JOBS_PAGE=oauth") {
						t.Errorf("%s: %d %q, want 403 saying how to open the pages up", path, w.Code, w.Body)
					}
				} else if w.Code == http.StatusForbidden {
					t.Errorf("%s: refused a loopback client: %s", path, w.Body)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default is loopback", Config{}, ""},
		{"off", Config{Mode: ModeOff}, ""},
		{"oauth complete", Config{Mode: ModeOAuth, Allow: []string{"octo-cat"}, OAuthClientID: "id", OAuthClientSecret: "s"}, ""},
		{"oauth without client", Config{Mode: ModeOAuth, Allow: []string{"a"}}, "GITHUB_OAUTH_CLIENT_ID"},
		{"oauth without logins", Config{Mode: ModeOAuth, OAuthClientID: "id", OAuthClientSecret: "s"}, "ADBOT_JOBS_ALLOW"},
		{"bad login", Config{Mode: ModeOAuth, Allow: []string{"a b<"}, OAuthClientID: "id", OAuthClientSecret: "s"}, "is not a GitHub login"},
		{"unknown mode", Config{Mode: "public"}, `ADBOT_JOBS_PAGE="public"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Normalize().Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
				t.Errorf("Validate() = %q, want an error with %q", got, tc.wantErr)
			}
		})
	}
	if diff := cmp.Diff(ParseLogins("alice, bob\tcarol,,"), []string{"alice", "bob", "carol"}); diff != "" {
		t.Errorf("ParseLogins (-got +want):\n%s", diff)
	}
	p, err := New(Config{Mode: ModeOff}, Deps{})
	if p != nil || err != nil {
		t.Errorf("New with the pages off = %v, %v; want nil, nil", p, err)
	}
}

func TestWebURL(t *testing.T) {
	for _, tc := range []struct{ api, want string }{
		{"https://api.github.com/", "https://github.com"},
		{"https://ghe.example.com/api/v3/", "https://ghe.example.com"},
		{"http://127.0.0.1:8999/", "http://127.0.0.1:8999"},
	} {
		t.Run(tc.api, func(t *testing.T) {
			if diff := cmp.Diff(WebURL(tc.api), tc.want); diff != "" {
				t.Errorf("WebURL (-got +want):\n%s", diff)
			}
		})
	}
}

// sseEvent is one server-sent event as read off the wire.
type sseEvent struct {
	Name string
	ID   string
	Data fragment
}

// readEvents reads events from an event stream into a channel until it ends.
func readEvents(t *testing.T, body io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data); err != nil {
					t.Errorf("event data %q: %v", line, err)
				}
			}
		}
	}()
	return ch
}

// next returns the next event that satisfies ok, failing after a generous deadline.
func next(t *testing.T, ch <-chan sseEvent, what string, ok func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("stream ended before %s", what)
			}
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func openStream(t *testing.T, srv *httptest.Server, path string, hdr http.Header) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("event stream: %s %q", resp.Status, b)
	}
	return readEvents(t, resp.Body)
}

func TestJobEventStream(t *testing.T) {
	r := newRig(t, Config{}, Deps{})
	srv := httptest.NewServer(r.page.Handler())
	t.Cleanup(srv.Close)
	j := sampleJob()
	r.putJob(t, j)
	r.publish(t, j.Key, runners.LogChunk{Cycle: 1, Step: "pytest-1", Seq: 0, Stream: "stdout", Data: "first\n"})

	events := openStream(t, srv, "/jobs/"+j.Key+"/events", nil)
	next(t, events, "the job's summary", func(ev sseEvent) bool { return ev.Name == "upsert" && ev.Data.ID == "summary" })
	first := next(t, events, "the output so far", func(ev sseEvent) bool { return ev.Name == "append" && strings.Contains(ev.Data.HTML, "first") })

	// Live output, escaped on the server.
	r.publish(t, j.Key, runners.LogChunk{Cycle: 1, Step: "pytest-1", Seq: 1, Stream: "stderr", Data: "<b>second</b>\n"})
	ev := next(t, events, "the new chunk", func(ev sseEvent) bool { return ev.Name == "append" && strings.Contains(ev.Data.HTML, "second") })
	if diff := cmp.Diff(ev.Data, fragment{Parent: "pane-pytest", HTML: `<span class="err">&lt;b&gt;second&lt;/b&gt;` + "\n</span>", Max: DefaultTailItems}); diff != "" {
		t.Errorf("append event (-got +want):\n%s", diff)
	}

	// A phase recorded in the job bucket re-renders the summary and its bar.
	j.Posted[runners.PhaseKey(1, "model")] = 300
	j.Phase, j.Updated = "model", j.Updated.Add(time.Second)
	r.putJob(t, j)
	next(t, events, "the summary with three phases done", func(ev sseEvent) bool {
		return ev.Data.ID == "summary" && strings.Contains(ev.Data.HTML, `<progress max="14" value="3"`)
	})

	// A browser that reconnects says what it has and gets only what is newer.
	again := openStream(t, srv, "/jobs/"+j.Key+"/events", http.Header{"Last-Event-ID": {first.ID}})
	ev = next(t, again, "output after the first chunk", func(ev sseEvent) bool { return ev.Name == "append" })
	if !strings.Contains(ev.Data.HTML, "second") {
		t.Errorf("after reconnecting, first output %q; want the chunk after %s", ev.Data.HTML, first.ID)
	}

	// A new cycle empties the panes.
	r.publish(t, j.Key, runners.LogChunk{Cycle: 2, Step: "agent-model-2", Seq: 0, Stream: "stderr", Data: "cycle two\n"})
	next(t, events, "the panes emptied", func(ev sseEvent) bool {
		return ev.Name == "upsert" && ev.Data.ID == "pane-pytest" && ev.Data.HTML == `<pre id="pane-pytest" class="pane"></pre>`
	})
	next(t, events, "the new cycle's output", func(ev sseEvent) bool { return strings.Contains(ev.Data.HTML, "cycle two") })
}

func TestListEventStream(t *testing.T) {
	r := newRig(t, Config{}, Deps{})
	srv := httptest.NewServer(r.page.Handler())
	t.Cleanup(srv.Close)
	events := openStream(t, srv, "/jobs/-/events", nil)
	j := sampleJob()
	r.putJob(t, j)
	ev := next(t, events, "the new job's row", func(ev sseEvent) bool { return ev.Name == "upsert" })
	if ev.Data.ID != "job-acme.trt.42" || ev.Data.Parent != "jobs-body" || !strings.Contains(ev.Data.HTML, `<progress max="14" value="2"`) {
		t.Errorf("row event %+v", ev.Data)
	}
	if err := r.res.Jobs.Delete(context.Background(), j.Key); err != nil {
		t.Fatal(err)
	}
	next(t, events, "the row's removal", func(ev sseEvent) bool { return ev.Name == "remove" && ev.Data.ID == "job-acme.trt.42" })
	// Output is not the list's business, and the PR index is not a job.
	if _, err := r.res.Jobs.Put(context.Background(), bus.PRIndexKey("acme", "trt", 7), []byte(j.Key)); err != nil {
		t.Fatal(err)
	}
	other := &bus.Job{Key: "acme.trt.50", Owner: "acme", Repo: "trt", Issue: 50, ModelID: "org/Other", Status: bus.StatusQueued}
	r.putJob(t, other) // written after the index entry: the page has read both
	jobs, _ := r.page.hub.list()
	if len(jobs) != 1 || jobs[0].Key != other.Key {
		t.Errorf("list holds %d jobs, want only %s", len(jobs), other.Key)
	}
}

func TestHubDropsSlowStream(t *testing.T) {
	h := newHub()
	h.buffer = 2
	s, _, ok := h.subscribe("k", "", 0)
	if !ok {
		t.Fatal("subscribe refused")
	}
	for i := range 5 {
		h.addChunk("k", runners.LogChunk{Cycle: 1, Step: "x", Seq: i, Data: "line\n"})
	}
	n := 0
	for range s.ch {
		n++
	}
	if n != 2 {
		t.Errorf("stream got %d events before it was closed, want its buffer's 2", n)
	}
	// It catches up from the tail when it comes back.
	_, snap, _ := h.subscribe("k", "", 0)
	if len(snap.items) != 6 { // a heading and five chunks
		t.Errorf("snapshot holds %d items, want 6", len(snap.items))
	}
}

func TestHubBounds(t *testing.T) {
	h := newHub()
	h.maxTails, h.maxStreams = 2, 1
	at := testClock
	h.now = func() time.Time { at = at.Add(time.Second); return at }
	for _, k := range []string{"a", "b", "a", "c"} {
		h.addChunk(k, runners.LogChunk{Cycle: 1, Step: "x", Data: k})
	}
	var keys []string
	for k := range h.tails {
		keys = append(keys, k)
	}
	if diff := cmp.Diff(keys, []string{"a", "c"}, cmpSorted); diff != "" {
		t.Errorf("tails kept (-got +want):\n%s", diff)
	}
	// Old cycles' chunks are late: dropped.
	h.addChunk("a", runners.LogChunk{Cycle: 3, Step: "x", Data: "new"})
	h.addChunk("a", runners.LogChunk{Cycle: 2, Step: "x", Data: "late"})
	if _, _, items := h.job("a"); len(items) != 2 || items[1].Text != "new" {
		t.Errorf("tail of a: %+v; want the heading and cycle 3's chunk", items)
	}
	if _, _, ok := h.subscribe("", "", 0); !ok {
		t.Fatal("first stream refused")
	}
	if _, _, ok := h.subscribe("a", "", 0); ok {
		t.Error("a stream past the bound was opened")
	}
	h.close()
	if _, _, ok := h.subscribe("", "", 0); ok {
		t.Error("a stream was opened on a closed hub")
	}
}

var cmpSorted = cmp.Transformer("sorted", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for k := i + 1; k < len(out); k++ {
			if out[k] < out[i] {
				out[i], out[k] = out[k], out[i]
			}
		}
	}
	return out
})

// FuzzParseEventID: ids made by eventID read back; others read as "from the start" or as some id.
func FuzzParseEventID(f *testing.F) {
	f.Add("lx3x1.42")
	f.Add("..")
	f.Add("a.18446744073709551616")
	f.Fuzz(func(t *testing.T, id string) {
		gen, n := parseEventID(id)
		if gen != "" && eventID(gen, n) != id && !strings.HasPrefix(id, gen+".") {
			t.Errorf("parseEventID(%q) = %q, %d", id, gen, n)
		}
		if g2, n2 := parseEventID(eventID(id, 7)); g2 != id || n2 != 7 {
			t.Errorf("eventID(%q, 7) reads back as %q, %d", id, g2, n2)
		}
	})
}
