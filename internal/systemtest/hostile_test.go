package systemtest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/handlers"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/server"
)

// post signs body and posts it to hook as GitHub does, and returns the answer.
func post(t *testing.T, hook, secret, event, guid string, body []byte) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := server.NewDeliveryRequest(ctx, hook, secret, event, guid, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("deliver %s: %v", event, err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(text)
}

// Each payload of the attack on the running server (issue #10) gets a 400
// that says why, nothing is queued or posted for it, and the server goes on
// handling real requests: before, a long delivery id or repository name
// became a KV key past NATS's protocol line and took the process down, a
// null issue panicked, and a null sender was answered "Hi @".
func TestHostilePayloadsLeaveServerUp(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	opened := func(edit func(m map[string]any)) []byte {
		return payload(t, "issues.opened.json", func(m map[string]any) {
			is := obj(m, "issue")
			is["number"], is["title"], is["body"], is["author_association"] = 501, "onboard "+qwen, "", "MEMBER"
			person(obj(is, "user"), maintainer)
			person(obj(m, "sender"), maintainer)
			edit(m)
		})
	}
	tests := []struct {
		name   string
		guid   string
		body   []byte
		reason string // in the 400's body
	}{
		{"delivery id of 4,100 bytes", strings.Repeat("d", 4100), opened(func(map[string]any) {}), "X-GitHub-Delivery"},
		{"repository name of 5,000 characters", "", opened(func(m map[string]any) {
			obj(m, "repository")["name"] = strings.Repeat("r", 5000)
		}), handlers.RefuseRepoName},
		{"repository owner with a subject wildcard", "", opened(func(m map[string]any) {
			obj(obj(m, "repository"), "owner")["login"] = "NVIDIA.*"
		}), handlers.RefuseRepoName},
		{"issue null", "", opened(func(m map[string]any) { m["issue"] = nil }), handlers.RefuseNoIssue},
		{"sender null", "", opened(func(m map[string]any) { m["sender"] = nil }), handlers.RefuseNoSender},
		{"sender login empty", "", opened(func(m map[string]any) { obj(m, "sender")["login"] = "" }), handlers.RefuseNoSender},
		{"issue number null", "", opened(func(m map[string]any) { obj(m, "issue")["number"] = nil }), handlers.RefuseNumber},
		{"issue number 0", "", opened(func(m map[string]any) { obj(m, "issue")["number"] = 0 }), handlers.RefuseNumber},
		{"issue number -5", "", opened(func(m map[string]any) { obj(m, "issue")["number"] = -5 }), handlers.RefuseNumber},
		{"installation id -1", "", opened(func(m map[string]any) { m["installation"] = map[string]any{"id": -1} }), handlers.RefuseInstallation},
	}
	before := r.commandsPublished()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			guid := tc.guid
			if guid == "" {
				guid = server.NewDeliveryID()
			}
			resp, text := post(t, r.hook, r.secret, "issues", guid, tc.body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(text, tc.reason) {
				t.Errorf("answer = %s %q, want 400 naming %q", resp.Status, text, tc.reason)
			}
		})
	}
	if n := r.commandsPublished() - before; n != 0 {
		t.Errorf("%d commands queued for hostile payloads, want none", n)
	}
	// Commands no handler makes, put on the stream directly: terminated.
	for i, data := range []string{
		`not json`,
		`{"kind":"onboard","delivery_id":"p-1","owner":"NVIDIA","repo":"` + strings.Repeat("r", 5000) + `","issue":1,"actor":"alice"}`,
		`{"kind":"onboard","delivery_id":"` + strings.Repeat("d", 4100) + `","owner":"NVIDIA","repo":"TensorRT-LLM","issue":1,"actor":"alice"}`,
		`{"kind":"onboard","delivery_id":"p-3","owner":"NVIDIA","repo":"TensorRT-LLM","issue":-5,"actor":"alice"}`,
		`{"kind":"help","delivery_id":"p-4","owner":"NVIDIA","repo":"TensorRT-LLM","issue":3,"actor":""}`,
	} {
		if _, err := r.res.JS.Publish(context.Background(), bus.CommandSubject, []byte(data)); err != nil {
			t.Fatalf("publish poison %d: %v", i, err)
		}
	}
	// The server is still up and carries out a real request.
	guid := server.NewDeliveryID()
	r.deliverAndWait("issues", guid, issueOpened(t, 502, "onboard "+qwen, maintainer, "MEMBER"))
	r.waitJob(502, "a job for the request after the attack", func(j *bus.Job) bool { return j.Status != "" })
	for _, n := range []int{-5, 0, 1, 3, 501} {
		if cs := r.botComments(n); len(cs) != 0 {
			t.Errorf("bot comments on #%d after hostile payloads: %q", n, cs[0].Body)
		}
	}
	r.poll("the poison commands to leave the stream", func() bool {
		info, err := r.res.Commands.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
	if !strings.Contains(r.logs.String(), "Dropping invalid command") {
		t.Error("no log line says an invalid command was dropped")
	}
}

// Bodies in flight are bounded: past the bound a delivery is answered 503
// with Retry-After, and once the body in flight is gone, deliveries are
// taken again.
func TestBodiesInFlightBounded(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.cfg.Server.MaxBodiesInFlight = r.cfg.Server.MaxBodyBytes
	r.restartServer()
	u := strings.TrimPrefix(r.hook, "http://")
	host, path, _ := strings.Cut(u, "/")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A body of the largest size GitHub sends, of which only the start arrives.
	fmt.Fprintf(conn, "POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-GitHub-Event: issues\r\n"+
		"X-GitHub-Delivery: slow-1\r\nContent-Length: %d\r\n\r\n{", path, host, r.cfg.Server.MaxBodyBytes)
	body := issueOpened(t, 601, "onboard "+qwen, maintainer, "MEMBER")
	var resp *http.Response
	r.poll("a delivery to be refused while the large body is in flight", func() bool {
		resp, _ = post(t, r.hook, r.secret, "issues", server.NewDeliveryID(), body)
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if got := resp.Header.Get("Retry-After"); got != strconv.Itoa(int(server.DefaultBusyRetryAfter/time.Second)) {
		t.Errorf("Retry-After = %q, want %d", got, int(server.DefaultBusyRetryAfter/time.Second))
	}
	conn.Close() // the large body is gone
	guid := server.NewDeliveryID()
	r.poll("a delivery to be taken once the large body is gone", func() bool {
		resp, _ := post(t, r.hook, r.secret, "issues", guid, body)
		return resp.StatusCode == http.StatusOK
	})
	r.waitJob(601, "a job for the delivery taken", func(j *bus.Job) bool { return j.Status != "" })
}

// serveEnv names the environment variable that makes TestServeSubprocess
// run adbot serve: the subprocess of TestKillMidStreamRepliesOnce.
const serveEnv = "ADBOT_SYSTEMTEST_SERVE"

// TestServeSubprocess is adbot serve in a process of its own, for a test to
// kill; it is skipped in a normal run.
func TestServeSubprocess(t *testing.T) {
	if os.Getenv(serveEnv) != "1" {
		t.Skip("runs only as the subprocess of TestKillMidStreamRepliesOnce")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := server.ServeCommand(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// subprocess is adbot serve running as a child process.
type subprocess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startSubprocess(t *testing.T, env []string, logPath string) *subprocess {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeSubprocess$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &subprocess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *subprocess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// A kill -9 while replies are being posted: before, a crash between posting
// a reply and recording it posted it twice, and one between recording a
// denial and posting it lost it. Every acknowledged delivery gets exactly
// one reply, whenever the process dies.
func TestKillMidStreamRepliesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	t.Parallel()
	gh := fakegithub.New(t)
	gh.SetPermission(owner, repo, maintainer, "write")
	hub := newFakeHub(t)
	secret := randomHex(20)
	dir := t.TempDir()
	port, natsPort := freePort(t), freePort(t)
	env := []string{
		serveEnv + "=1",
		"PORT=" + strconv.Itoa(port), "ADBOT_NATS_PORT=" + strconv.Itoa(natsPort), "ADBOT_NATS_HOST=127.0.0.1",
		"ADBOT_DATA_DIR=" + dir, "ADBOT_METRICS_ADDRESS=off", "ADBOT_LOG_LEVEL=debug",
		"GITHUB_APP_ID=" + strconv.FormatInt(fakegithub.DefaultAppID, 10), "GITHUB_APP_PRIVATE_KEY=" + appKey(t),
		"GITHUB_WEBHOOK_SECRET=" + secret, "GITHUB_V3_API_URL=" + gh.URL(), "HF_ENDPOINT=" + hub.srv.URL,
		"NATS_URL=", "GITHUB_APP_PRIVATE_KEY_FILE=",
	}
	logPath := filepath.Join(dir, "serve.log")
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("server log (last 40 lines):\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	}()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	hook := base + server.WebhookRoute
	ready := func() bool {
		resp, err := http.Get(base + server.ReadyRoute)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	poll := func(what string, bound time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(bound)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up after %s waiting for %s", bound, what)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	p := startSubprocess(t, env, logPath)
	// A fresh process starting JetStream on a machine busy with the other
	// tests can take longer than one poll bound: give it three.
	const startBound = 3 * wait
	poll("the server to be ready", startBound, ready)

	// 60 requests naming no model (an invalid-id reply each) and 20 from a
	// stranger (a denial each), one issue each.
	type delivery struct {
		issue int
		guid  string
		body  []byte
	}
	var all []delivery
	for i := 1; i <= 80; i++ {
		d := delivery{issue: 1000 + i, guid: server.NewDeliveryID()}
		if i <= 60 {
			d.body = issueOpened(t, d.issue, "onboard not/a/model", maintainer, "MEMBER")
		} else {
			d.body = issueOpened(t, d.issue, "onboard "+qwen, stranger, "NONE")
		}
		all = append(all, d)
	}
	replies := func(issue int) int {
		n := 0
		for _, c := range gh.Comments(owner, repo, issue) {
			if c.Bot {
				n++
			}
		}
		return n
	}
	var (
		mu      sync.Mutex
		pending []delivery // not acknowledged: GitHub would redeliver them
	)
	deliver := func(d delivery) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := server.NewDeliveryRequest(ctx, hook, secret, "issues", d.guid, d.body)
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode/100 != 2 {
			mu.Lock()
			pending = append(pending, d)
			mu.Unlock()
		}
	}
	// The process dies once the 10th reply is stored on GitHub and before
	// GitHub has answered it: between posting and recording.
	killed := make(chan struct{})
	var posted int
	gh.AfterComment(func(fakegithub.Comment) {
		mu.Lock()
		posted++
		n := posted
		mu.Unlock()
		if n == 10 {
			p.kill()
			close(killed)
		}
	})
	var wg sync.WaitGroup
	work := make(chan delivery)
	for range 8 {
		wg.Go(func() {
			for d := range work {
				deliver(d)
			}
		})
	}
	for _, d := range all {
		work <- d
	}
	close(work)
	wg.Wait()
	select {
	case <-killed:
	case <-time.After(wait):
		t.Fatal("the server was not killed: fewer than 10 replies posted")
	}
	p = startSubprocess(t, env, logPath)
	poll("the server to be ready after kill -9", startBound, ready)
	mu.Lock()
	again := pending
	pending = nil
	mu.Unlock()
	for _, d := range again {
		deliver(d) // as GitHub's redelivery (or the sweeper) would
	}
	if len(pending) != 0 {
		t.Fatalf("%d deliveries refused after the restart", len(pending))
	}
	// Commands held when the process died come back after the consumer's
	// ack wait (30 s).
	poll("every issue to have its reply", 3*time.Minute, func() bool {
		for _, d := range all {
			if replies(d.issue) == 0 {
				return false
			}
		}
		return true
	})
	// Count only once no command waits or is held: a duplicate would come
	// from one of them.
	nc, err := nats.Connect("nats://127.0.0.1:" + strconv.Itoa(natsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	poll("every command to be carried out", 3*time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, bus.CommandStream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
	got := map[int]int{}
	want := map[int]int{}
	for _, d := range all {
		got[d.issue], want[d.issue] = replies(d.issue), 1
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("bot replies per issue after kill -9 (-got +want):\n%s", diff)
	}
	t.Logf("%d deliveries redelivered after the kill", len(again))
}
