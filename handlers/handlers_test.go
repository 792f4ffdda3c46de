package handlers_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/handlers"
	"github.com/nvidia/adbot/internal/fixtures"
)

const (
	botLogin = "adbot[bot]"
	appID    = 4242
)

var fixedNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// rig is the real go-githubapp dispatcher over adbot's handlers, with an
// embedded NATS server behind them.
type rig struct {
	t      *testing.T
	res    *bus.Resources
	secret string
	hook   http.Handler
	seq    atomic.Int64
}

func newRig(t *testing.T, secret string, pub handlers.Publisher) *rig {
	t.Helper()
	_, _, res := bustest.Start(t)
	d := handlers.Deps{AppID: appID, BotLogin: botLogin, Now: func() time.Time { return fixedNow }}.FromResources(res)
	if pub != nil {
		d.Publisher = pub
	}
	if secret == "" {
		secret = fmt.Sprintf("test-secret-%d", time.Now().UnixNano())
	}
	return &rig{t: t, res: res, secret: secret, hook: githubapp.NewEventDispatcher(handlers.New(d), secret)}
}

// result is what one delivery did.
type result struct {
	status   int
	ignored  string // the LogKeyIgnored value logged, if any
	commands []bus.Command
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// deliver sends a signed delivery; an empty id gets a fresh one.
func (r *rig) deliver(event, id string, body []byte) result {
	if id == "" {
		id = fmt.Sprintf("delivery-%d", r.seq.Add(1))
	}
	h := http.Header{}
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", id)
	h.Set("X-Hub-Signature-256", sign(r.secret, body))
	h.Set("Content-Type", "application/json")
	return r.send(h, body)
}

// send posts body with headers h and reports what happened: the status, the
// ignore reason logged and the commands newly on the stream.
func (r *rig) send(h http.Header, body []byte) result {
	r.t.Helper()
	ctx := context.Background()
	before := r.streamSeq()
	var logs bytes.Buffer
	logger := zerolog.New(&logs).Level(zerolog.DebugLevel)
	req := httptest.NewRequest(http.MethodPost, "/api/github/hook", bytes.NewReader(body)).WithContext(logger.WithContext(ctx))
	req.Header = h
	w := httptest.NewRecorder()
	r.hook.ServeHTTP(w, req)
	res := result{status: w.Code}
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			if v, ok := m[handlers.LogKeyIgnored].(string); ok {
				res.ignored = v
			}
		}
	}
	after := r.streamSeq()
	for seq := before + 1; seq <= after; seq++ {
		msg, err := r.res.Commands.GetMsg(ctx, seq)
		if err != nil {
			r.t.Fatalf("read command %d: %v", seq, err)
		}
		var c bus.Command
		if err := json.Unmarshal(msg.Data, &c); err != nil {
			r.t.Fatalf("decode command: %v", err)
		}
		if got := msg.Header.Get(jetstream.MsgIDHeader); got != c.DeliveryID {
			r.t.Errorf("command published with Nats-Msg-Id %q, want the delivery id %q", got, c.DeliveryID)
		}
		res.commands = append(res.commands, c)
	}
	return res
}

func (r *rig) streamSeq() uint64 {
	info, err := r.res.Commands.Info(context.Background())
	if err != nil {
		r.t.Fatalf("command stream info: %v", err)
	}
	return info.State.LastSeq
}

func (r *rig) addJob(j bus.Job) {
	r.t.Helper()
	j.Key = bus.JobKey(j.Owner, j.Repo, j.Issue)
	if j.Status == "" {
		j.Status = bus.StatusWaitingReview
	}
	if _, err := bus.CreateJob(context.Background(), r.res.Jobs, &j); err != nil {
		r.t.Fatalf("create job: %v", err)
	}
}

// payload reads a webhook fixture and applies edits ("a.b.c" = value; nil deletes).
func payload(t *testing.T, name string, edits map[string]any) []byte {
	t.Helper()
	raw := fixtures.Read(t, "github", "webhooks", name)
	if len(edits) == 0 {
		return raw
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	keys := make([]string, 0, len(edits))
	for k := range edits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, path := range keys {
		parts := strings.Split(path, ".")
		cur := m
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		if v := edits[path]; v == nil {
			delete(cur, parts[len(parts)-1])
		} else {
			cur[parts[len(parts)-1]] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ignoreVolatile drops what differs between runs.
var ignoreVolatile = cmpopts.IgnoreFields(bus.Command{}, "DeliveryID")

// TestFixturePayloads sends every webhook fixture, unchanged, through the real
// dispatcher: none holds an onboard command and no job exists, so each is
// ignored, and the test says why.
func TestFixturePayloads(t *testing.T) {
	dir := fixtures.Path(t, "github", "webhooks")
	want := map[string]string{
		"installation.created.json":                handlers.ReasonInstallation,
		"installation.created-2.json":              handlers.ReasonInstallation,
		"issue_comment.created.json":               handlers.ReasonNoJob,
		"issue_comment.created-2.json":             handlers.ReasonNoJob,
		"issue_comment.created-3.json":             handlers.ReasonNoJob,
		"issues.labeled.json":                      handlers.ReasonOtherLabel,
		"issues.labeled-2.json":                    handlers.ReasonOtherLabel,
		"issues.opened.json":                       handlers.ReasonNoCommand,
		"issues.opened-2.json":                     handlers.ReasonNoCommand,
		"ping.json":                                "", // answered by the dispatcher itself
		"ping-2.json":                              "",
		"pull_request.closed.json":                 handlers.ReasonNoJob,
		"pull_request.closed-2.json":               handlers.ReasonNoJob,
		"pull_request_review.submitted.json":       handlers.ReasonNoJob,
		"pull_request_review.submitted-2.json":     handlers.ReasonNoJob,
		"pull_request_review.submitted-3.json":     handlers.ReasonEmptyReview,
		"pull_request_review_comment.created.json": handlers.ReasonNoJob,
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no webhook fixtures in %s: %v", dir, err)
	}
	r := newRig(t, "", nil)
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			reason, ok := want[name]
			if !ok {
				t.Fatalf("fixture %s has no expected outcome: add it to the table", name)
			}
			event, _, _ := strings.Cut(name, ".")
			event = strings.TrimSuffix(strings.TrimRight(event, "0123456789"), "-") // ping-2 -> ping
			got := r.deliver(event, "", payload(t, name, nil))
			if got.status != http.StatusOK {
				t.Errorf("status %d, want 200", got.status)
			}
			if got.ignored != reason {
				t.Errorf("ignored because %q, want %q", got.ignored, reason)
			}
			if len(got.commands) != 0 {
				t.Errorf("commands %+v, want none", got.commands)
			}
		})
	}
}

// capture is a recorded delivery (fixtures/github/deliveries, see its SOURCES.md).
type capture struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body_raw_base64"`
}

// captureSecret is the webhook secret the captures' source publishes.
const captureSecret = "402786017574bd28f9d8f7a18648939751c47fe09077d56e10f0444f14fbb73b"

// TestSignedCaptures replays every captured delivery byte for byte with its
// original signature; the dispatcher must accept each signature.
func TestSignedCaptures(t *testing.T) {
	dir := fixtures.Path(t, "github", "deliveries")
	want := map[string]struct {
		status  int
		ignored string
	}{
		"check_run.completed.capture.json":   {http.StatusAccepted, ""}, // no handler for the event
		"check_run.created.capture.json":     {http.StatusAccepted, ""},
		"check_suite.requested.capture.json": {http.StatusAccepted, ""},
		"pull_request.closed.capture.json":   {http.StatusOK, handlers.ReasonNoJob},
		"pull_request.opened.capture.json":   {http.StatusOK, handlers.ReasonAction},
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s: %v", dir, err)
	}
	r := newRig(t, captureSecret, nil)
	load := func(t *testing.T, f string) (http.Header, []byte) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c capture
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("decode capture: %v", err)
		}
		body, err := base64.StdEncoding.DecodeString(c.Body)
		if err != nil {
			t.Fatalf("decode body: %v", err)
		}
		h := http.Header{}
		for k, v := range c.Headers {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "x-github-") || strings.HasPrefix(lk, "x-hub-signature") || lk == "content-type" {
				h.Set(k, v)
			}
		}
		return h, body
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("capture %s has no expected outcome: add it to the table", name)
			}
			h, body := load(t, f)
			if sign(captureSecret, body) != h.Get("X-Hub-Signature-256") {
				t.Fatalf("capture signature does not verify with the published secret")
			}
			got := r.send(h, body)
			if got.status != w.status || got.ignored != w.ignored || len(got.commands) != 0 {
				t.Errorf("got status %d, ignored %q, %d commands; want %d, %q, none", got.status, got.ignored, len(got.commands), w.status, w.ignored)
			}
			// One flipped byte and the signature no longer holds.
			bad := bytes.Clone(body)
			bad[len(bad)/2] ^= 1
			if got := r.send(h, bad); got.status != http.StatusBadRequest || len(got.commands) != 0 {
				t.Errorf("tampered body: status %d, %d commands; want 400, none", got.status, len(got.commands))
			}
		})
	}

	// With a job on the captured pull request, closing it ends the job.
	t.Run("closed job PR", func(t *testing.T) {
		h, body := load(t, filepath.Join(dir, "pull_request.closed.capture.json"))
		var p struct {
			Number int `json:"number"`
			Repo   struct {
				Name  string `json:"name"`
				Owner struct {
					Login string `json:"login"`
				} `json:"owner"`
			} `json:"repository"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		r.addJob(bus.Job{Owner: p.Repo.Owner.Login, Repo: p.Repo.Name, Issue: 1, PR: p.Number})
		got := r.send(h, body)
		if len(got.commands) != 1 || got.commands[0].Kind != bus.CmdEnd || got.commands[0].Reason != "merged" ||
			got.commands[0].InstallationID != 87385964 || got.commands[0].DeliveryID != h.Get("X-GitHub-Delivery") {
			t.Errorf("commands = %+v, want one end (merged) for installation 87385964", got.commands)
		}
	})
}

// TestCommands builds signed variants of the fixtures that carry commands.
func TestCommands(t *testing.T) {
	r := newRig(t, "", nil)
	// Jobs: Codertocat/Hello-World issue 1 (PR 2), chhsia0/knative-route-demo
	// issue 10 (PR 3), chdsbd/test_repo issues 30 (PR 9) and 31 (PR 8).
	r.addJob(bus.Job{Owner: "Codertocat", Repo: "Hello-World", Issue: 1, PR: 2})
	r.addJob(bus.Job{Owner: "chhsia0", Repo: "knative-route-demo", Issue: 10, PR: 3})
	r.addJob(bus.Job{Owner: "chdsbd", Repo: "test_repo", Issue: 30, PR: 9})
	r.addJob(bus.Job{Owner: "chdsbd", Repo: "test_repo", Issue: 31, PR: 8})

	base := func(kind bus.CommandKind, event, owner, repo string, n int, isPR bool, actor, assoc string) bus.Command {
		return bus.Command{Kind: kind, Event: event, Owner: owner, Repo: repo, Issue: n, IsPR: isPR,
			Actor: actor, ActorAssociation: assoc, Received: fixedNow}
	}
	with := func(c bus.Command, f func(*bus.Command)) bus.Command { f(&c); return c }
	kodiak := func(kind bus.CommandKind, event string, n int, actor, assoc string) bus.Command {
		c := base(kind, event, "chdsbd", "test_repo", n, true, actor, assoc)
		c.InstallationID = 848733
		return c
	}
	hello := func(kind bus.CommandKind, event string, n int, isPR bool) bus.Command {
		return base(kind, event, "Codertocat", "Hello-World", n, isPR, "Codertocat", "OWNER")
	}

	tests := []struct {
		name    string
		event   string
		body    []byte
		ignored string
		want    []bus.Command
	}{
		{
			name: "issue opened with onboard title", event: "issues",
			body: payload(t, "issues.opened.json", map[string]any{"issue.title": "onboard Qwen/Qwen3-0.6B"}),
			want: []bus.Command{with(hello(bus.CmdOnboard, "issues.opened", 1, false), func(c *bus.Command) { c.ModelID = "Qwen/Qwen3-0.6B" })},
		},
		{
			name: "issue opened with a Hub URL on the first body line", event: "issues",
			body: payload(t, "issues.opened-2.json", map[string]any{
				"issue.title": "New model", "issue.body": "\n/Onboard https://huggingface.co/Qwen/Qwen3-8B/tree/main\nthanks!",
			}),
			want: []bus.Command{with(hello(bus.CmdOnboard, "issues.opened", 1, false), func(c *bus.Command) { c.ModelID = "Qwen/Qwen3-8B" })},
		},
		{
			name: "issue opened with a malformed id still reaches the worker", event: "issues",
			body: payload(t, "issues.opened.json", map[string]any{"issue.title": "onboard ../../etc/passwd"}),
			want: []bus.Command{with(hello(bus.CmdOnboard, "issues.opened", 1, false), func(c *bus.Command) { c.ModelID = "../../etc/passwd" })},
		},
		{
			name: "issue edited into a command", event: "issues",
			body: payload(t, "issues.opened.json", map[string]any{
				"action": "edited", "issue.title": "onboard zai-org/GLM-5", "changes.title.from": "GLM-5 please",
			}),
			want: []bus.Command{with(hello(bus.CmdOnboard, "issues.edited", 1, false), func(c *bus.Command) { c.ModelID = "zai-org/GLM-5" })},
		},
		{
			name: "issue edit elsewhere keeps the same command", event: "issues",
			body: payload(t, "issues.opened.json", map[string]any{
				"action": "edited", "issue.title": "onboard zai-org/GLM-5", "changes.body.from": "typo",
			}),
			ignored: handlers.ReasonUnchanged,
		},
		{
			name: "trigger label with the model in the title", event: "issues",
			body: payload(t, "issues.labeled.json", map[string]any{"label.name": "AD-Onboard", "issue.title": "google/gemma-3-27b-it"}),
			want: []bus.Command{with(hello(bus.CmdOnboard, "issues.labeled", 1, false), func(c *bus.Command) { c.ModelID = "google/gemma-3-27b-it" })},
		},
		{
			// The body's command was once ignored: the labeler was told the
			// title names no model.
			name: "trigger label with the command in the body's first line", event: "issues",
			body: payload(t, "issues.labeled.json", map[string]any{"label.name": "ad-onboard", "issue.title": "Please add this model",
				"issue.body": "\n onboard google/gemma-3-27b-it\n\nThanks!"}),
			want: []bus.Command{with(hello(bus.CmdOnboard, "issues.labeled", 1, false), func(c *bus.Command) { c.ModelID = "google/gemma-3-27b-it" })},
		},
		{
			name: "trigger label on a pull request", event: "issues",
			body: payload(t, "issues.labeled.json", map[string]any{"label.name": "ad-onboard", "issue.title": "onboard google/gemma-3-27b-it",
				"issue.pull_request": map[string]any{"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}}),
			ignored: handlers.ReasonPullRequest,
		},
		{
			name: "trigger label by someone else on a title without a model", event: "issues",
			body: payload(t, "issues.labeled.json", map[string]any{"label.name": "ad-onboard", "sender.login": "maintainer"}),
			want: []bus.Command{base(bus.CmdOnboard, "issues.labeled", "Codertocat", "Hello-World", 1, false, "maintainer", "")},
		},
		{
			name: "issue closed", event: "issues",
			body:    payload(t, "issues.opened.json", map[string]any{"action": "closed", "issue.title": "onboard a/b"}),
			ignored: handlers.ReasonAction,
		},
		{
			name: "issue opened by the App", event: "issues",
			body: payload(t, "issues.opened.json", map[string]any{
				"issue.title": "onboard a/b", "sender.login": botLogin, "sender.type": "Bot",
			}),
			ignored: handlers.ReasonOwnEvent,
		},
		{
			name: "status command without a job", event: "issue_comment",
			body: payload(t, "issue_comment.created-3.json", map[string]any{"comment.body": "/onboard status", "issue.number": 77}),
			want: []bus.Command{with(hello(bus.CmdStatus, "issue_comment.created", 77, false), func(c *bus.Command) {
				c.InstallationID, c.CommentID = 1, 492700400
			})},
		},
		{
			name: "unknown subcommand is help", event: "issue_comment",
			body: payload(t, "issue_comment.created.json", map[string]any{"comment.body": "/onboard frobnicate"}),
			want: []bus.Command{with(hello(bus.CmdHelp, "issue_comment.created", 1, false), func(c *bus.Command) {
				c.CommentID, c.Reason = 492700400, "frobnicate"
			})},
		},
		{
			name: "onboard in a comment on an issue", event: "issue_comment",
			body: payload(t, "issue_comment.created.json", map[string]any{"comment.body": "/onboard Qwen/Qwen3-0.6B"}),
			want: []bus.Command{with(hello(bus.CmdOnboard, "issue_comment.created", 1, false), func(c *bus.Command) {
				c.CommentID, c.ModelID = 492700400, "Qwen/Qwen3-0.6B"
			})},
		},
		{
			name: "LGTM on the job's issue ends it", event: "issue_comment",
			body: payload(t, "issue_comment.created.json", map[string]any{"comment.body": "LGTM!"}),
			want: []bus.Command{with(hello(bus.CmdEnd, "issue_comment.created", 1, false), func(c *bus.Command) {
				c.CommentID, c.Reason = 492700400, "comment"
			})},
		},
		{
			name: "a remark on the job's issue is not feedback", event: "issue_comment",
			body:    payload(t, "issue_comment.created.json", nil),
			ignored: handlers.ReasonIssueRemark,
		},
		{
			name: "a remark on the job's PR is feedback", event: "issue_comment",
			body: payload(t, "issue_comment.created-2.json", nil),
			want: []bus.Command{with(base(bus.CmdFeedback, "issue_comment.created", "chhsia0", "knative-route-demo", 3, true, "chhsia0", "OWNER"), func(c *bus.Command) {
				c.CommentID = 546616131
				c.Feedback = []bus.Feedback{{Source: "issue_comment", ID: 546616131, Author: "chhsia0", Body: "/build",
					URL: "https://github.com/chhsia0/knative-route-demo/pull/3#issuecomment-546616131"}}
			})},
		},
		{
			name: "a long review comment mentioning lgtm is feedback", event: "issue_comment",
			body: payload(t, "issue_comment.created-2.json", map[string]any{"comment.body": "This is lgtm overall, but rename the config file."}),
			want: []bus.Command{with(base(bus.CmdFeedback, "issue_comment.created", "chhsia0", "knative-route-demo", 3, true, "chhsia0", "OWNER"), func(c *bus.Command) {
				c.CommentID = 546616131
				c.Feedback = []bus.Feedback{{Source: "issue_comment", ID: 546616131, Author: "chhsia0", Body: "This is lgtm overall, but rename the config file.",
					URL: "https://github.com/chhsia0/knative-route-demo/pull/3#issuecomment-546616131"}}
			})},
		},
		{
			name: "onboard <model> on a PR is help", event: "issue_comment",
			body: payload(t, "issue_comment.created-2.json", map[string]any{"comment.body": "/onboard a/b"}),
			want: []bus.Command{with(base(bus.CmdHelp, "issue_comment.created", "chhsia0", "knative-route-demo", 3, true, "chhsia0", "OWNER"), func(c *bus.Command) {
				c.CommentID, c.Reason = 546616131, "a/b"
			})},
		},
		{
			name: "[AGENT] comment", event: "issue_comment",
			body:    payload(t, "issue_comment.created-2.json", map[string]any{"comment.body": "[AGENT] cycle 2 started"}),
			ignored: handlers.ReasonAgentComment,
		},
		{
			name: "comment made through the App", event: "issue_comment",
			body:    payload(t, "issue_comment.created-2.json", map[string]any{"comment.performed_via_github_app": map[string]any{"id": appID, "slug": "adbot"}}),
			ignored: handlers.ReasonOwnEvent,
		},
		{
			name: "comment by the App's bot user", event: "issue_comment",
			body:    payload(t, "issue_comment.created-2.json", map[string]any{"sender.login": botLogin, "sender.type": "Bot"}),
			ignored: handlers.ReasonOwnEvent,
		},
		{
			name: "comment by another bot", event: "issue_comment",
			body:    payload(t, "issue_comment.created-2.json", map[string]any{"sender.login": "dependabot[bot]", "sender.type": "Bot"}),
			ignored: handlers.ReasonOtherBot,
		},
		{
			name: "comment edited", event: "issue_comment",
			body:    payload(t, "issue_comment.created-2.json", map[string]any{"action": "edited"}),
			ignored: handlers.ReasonAction,
		},
		{
			name: "approval on the job's PR is an end with the reviewed commit", event: "pull_request_review",
			body: payload(t, "pull_request_review.submitted-3.json", map[string]any{"review.state": "approved"}),
			want: []bus.Command{with(hello(bus.CmdEnd, "pull_request_review.submitted", 2, true), func(c *bus.Command) {
				c.InstallationID, c.Reason, c.CommitSHA = 1, "approved", "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
			})},
		},
		{
			name: "changes requested is feedback", event: "pull_request_review",
			body: payload(t, "pull_request_review.submitted-3.json", map[string]any{"review.state": "changes_requested", "review.body": "Use world_size_2."}),
			want: []bus.Command{with(hello(bus.CmdFeedback, "pull_request_review.submitted", 2, true), func(c *bus.Command) {
				c.InstallationID = 1
				c.Feedback = []bus.Feedback{{Source: "review", ID: 237895671, Author: "Codertocat", Body: "Use world_size_2.",
					URL: "https://github.com/Codertocat/Hello-World/pull/2#pullrequestreview-237895671"}}
			})},
		},
		{
			name: "a review comment is feedback with its line", event: "pull_request_review_comment",
			body: payload(t, "pull_request_review_comment.created.json", nil),
			want: []bus.Command{with(hello(bus.CmdFeedback, "pull_request_review_comment.created", 2, true), func(c *bus.Command) {
				c.InstallationID, c.ReviewCommentID = 1, 284312630
				c.Feedback = []bus.Feedback{{Source: "review_comment", ID: 284312630, Author: "Codertocat", Body: "Maybe you should use more emoji on this line.",
					Path: "README.md", Line: 265, URL: "https://github.com/Codertocat/Hello-World/pull/2#discussion_r284312630"}}
			})},
		},
		{
			name: "a command on a review's line comment, its 👀 to go there", event: "pull_request_review_comment",
			body: payload(t, "pull_request_review_comment.created.json", map[string]any{"comment.body": "/onboard status"}),
			want: []bus.Command{with(hello(bus.CmdStatus, "pull_request_review_comment.created", 2, true), func(c *bus.Command) {
				c.InstallationID, c.ReviewCommentID = 1, 284312630
			})},
		},
		{
			name: "kodiak's real approval, unchanged, on a job's PR", event: "pull_request_review",
			body: payload(t, "pull_request_review.submitted.json", nil),
			want: []bus.Command{with(kodiak(bus.CmdEnd, "pull_request_review.submitted", 9, "sbdchd", "COLLABORATOR"), func(c *bus.Command) {
				c.Reason, c.CommitSHA = "approved", "da14dfc294d49d554f189965f9abd4ed9eea524e"
			})},
		},
		{
			name: "kodiak's real changes request, unchanged, on a job's PR", event: "pull_request_review",
			body: payload(t, "pull_request_review.submitted-2.json", nil),
			want: []bus.Command{with(kodiak(bus.CmdFeedback, "pull_request_review.submitted", 9, "sbdchd", "COLLABORATOR"), func(c *bus.Command) {
				c.Feedback = []bus.Feedback{{Source: "review", ID: 232483711, Author: "sbdchd", Body: "make it not shit",
					URL: "https://github.com/chdsbd/test_repo/pull/9#pullrequestreview-232483711"}}
			})},
		},
		{
			name: "kodiak merging a job's PR ends it", event: "pull_request",
			body: payload(t, "pull_request.closed.json", nil),
			want: []bus.Command{with(kodiak(bus.CmdEnd, "pull_request.closed", 8, "kodiakhq[bot]", ""), func(c *bus.Command) {
				c.Reason, c.CommitSHA = "merged", "61e583350f834739f02c8411a9b6f190a1d02724"
			})},
		},
		{
			name: "a PR closed by the App itself", event: "pull_request",
			body:    payload(t, "pull_request.closed.json", map[string]any{"sender.login": botLogin}),
			ignored: handlers.ReasonOwnEvent,
		},
		{
			name: "closing the job's PR without merging ends it", event: "pull_request",
			body: payload(t, "pull_request.closed-2.json", nil),
			want: []bus.Command{with(base(bus.CmdEnd, "pull_request.closed", "Codertocat", "Hello-World", 2, true, "Codertocat", ""), func(c *bus.Command) {
				c.InstallationID, c.Reason, c.CommitSHA = 1, "closed", "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
			})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.deliver(tt.event, "", tt.body)
			if got.status != http.StatusOK {
				t.Errorf("status %d, want 200", got.status)
			}
			if got.ignored != tt.ignored {
				t.Errorf("ignored because %q, want %q", got.ignored, tt.ignored)
			}
			if diff := cmp.Diff(got.commands, tt.want, ignoreVolatile, cmpopts.IgnoreFields(bus.Feedback{}, "DeliveryID"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("commands (-got +want):\n%s", diff)
			}
			for _, c := range got.commands {
				for _, f := range c.Feedback {
					if f.DeliveryID != c.DeliveryID {
						t.Errorf("feedback delivery id %q, want the command's %q", f.DeliveryID, c.DeliveryID)
					}
				}
			}
		})
	}
}

// TestDuplicateDelivery: the same delivery twice is one command.
func TestDuplicateDelivery(t *testing.T) {
	r := newRig(t, "", nil)
	body := payload(t, "issues.opened.json", map[string]any{"issue.title": "onboard Qwen/Qwen3-0.6B"})
	first := r.deliver("issues", "3f5e0c9a-0000-11f0-8000-000000000001", body)
	second := r.deliver("issues", "3f5e0c9a-0000-11f0-8000-000000000001", body)
	if first.status != http.StatusOK || second.status != http.StatusOK {
		t.Errorf("statuses %d, %d; want 200 twice", first.status, second.status)
	}
	if len(first.commands) != 1 || len(second.commands) != 0 {
		t.Errorf("commands: first %d, second %d; want 1 and 0", len(first.commands), len(second.commands))
	}
}

type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, string, []byte, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return nil, errors.New("nats: no responders available for request")
}

// TestPublishFailure: a command NATS cannot take fails the delivery.
func TestPublishFailure(t *testing.T) {
	r := newRig(t, "", failingPublisher{})
	body := payload(t, "issues.opened.json", map[string]any{"issue.title": "onboard Qwen/Qwen3-0.6B"})
	if got := r.deliver("issues", "", body); got.status < 500 {
		t.Errorf("status %d, want a 5xx so that GitHub records a failed delivery", got.status)
	}
	// Directly: the handler's error says the command was not queued.
	hs := handlers.New(handlers.Deps{Publisher: failingPublisher{}, Jobs: r.res.Jobs})
	err := hs[0].Handle(context.Background(), "issues", "d-1", body)
	if !errors.Is(err, handlers.ErrNotQueued) {
		t.Errorf("Handle error = %v, want ErrNotQueued", err)
	}
}

// TestPublishFailureRealNATS stops the NATS server under the handler.
func TestPublishFailureRealNATS(t *testing.T) {
	srv, _, res := bustest.Start(t)
	hs := handlers.New(handlers.Deps{}.FromResources(res))
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	body := payload(t, "issues.opened.json", map[string]any{"issue.title": "onboard Qwen/Qwen3-0.6B"})
	if err := hs[0].Handle(ctx, "issues", "d-2", body); !errors.Is(err, handlers.ErrNotQueued) {
		t.Errorf("Handle error = %v, want ErrNotQueued", err)
	}
}

// TestUndecodablePayload: a payload that is not the event's JSON is an error.
func TestUndecodablePayload(t *testing.T) {
	r := newRig(t, "", nil)
	for _, h := range handlers.New(handlers.Deps{Publisher: r.res.JS, Jobs: r.res.Jobs}) {
		if err := h.Handle(context.Background(), h.Handles()[0], "d", []byte(`{"action": 7}`)); err == nil {
			t.Errorf("%T accepted an undecodable payload", h)
		}
	}
}

// BenchmarkDelivery times one signed issues.opened delivery through the
// dispatcher and handler to a command acknowledged by an embedded JetStream
// (file store), as the webhook request does before answering GitHub.
func BenchmarkDelivery(b *testing.B) {
	_, _, res := bustest.Start(b)
	secret := "bench-secret"
	hook := githubapp.NewEventDispatcher(handlers.New(handlers.Deps{BotLogin: botLogin}.FromResources(res)), secret)
	raw := fixtures.Read(b, "github", "webhooks", "issues.opened.json")
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatal(err)
	}
	m["issue"].(map[string]any)["title"] = "onboard Qwen/Qwen3-0.6B"
	body, _ := json.Marshal(m)
	sig := sign(secret, body)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/api/github/hook", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "issues")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprint("bench-", i))
		req.Header.Set("X-Hub-Signature-256", sig)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		hook.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
