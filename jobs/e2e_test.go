package jobs_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/palantir/go-githubapp/githubapp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/handlers"
	"github.com/nvidia/adbot/internal/fixtures"
)

// webhook signs and delivers a payload to the real dispatcher over adbot's handlers.
type webhook struct {
	t      *testing.T
	hook   http.Handler
	secret string
}

func newWebhook(t *testing.T, r *rig) *webhook {
	secret := "e2e-" + time.Now().Format(time.RFC3339Nano)
	hs := handlers.New(handlers.Deps{AppID: 1, BotLogin: "adbot[bot]"}.FromResources(r.res))
	return &webhook{t: t, hook: githubapp.NewEventDispatcher(hs, secret), secret: secret}
}

func (wh *webhook) deliver(event, id string, body []byte) int {
	m := hmac.New(sha256.New, []byte(wh.secret))
	m.Write(body)
	req := httptest.NewRequest(http.MethodPost, "/api/github/hook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	wh.hook.ServeHTTP(w, req)
	return w.Code
}

// fixture reads a webhook payload and moves it to octo/models, installation 1.
func fixture(t *testing.T, name string, edit func(m map[string]any)) []byte {
	var m map[string]any
	if err := json.Unmarshal(fixtures.Read(t, "github", "webhooks", name), &m); err != nil {
		t.Fatal(err)
	}
	rp := m["repository"].(map[string]any)
	rp["name"], rp["full_name"] = repo, owner+"/"+repo
	rp["owner"].(map[string]any)["login"] = owner
	m["installation"] = map[string]any{"id": 1}
	m["sender"].(map[string]any)["login"] = maint
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEndToEnd takes real payloads through the dispatcher, the command stream
// and the worker to the fake GitHub.
func TestEndToEnd(t *testing.T) {
	r := newRig(t, -1)
	wh := newWebhook(t, r)
	opened := fixture(t, "issues.opened.json", func(m map[string]any) {
		is := m["issue"].(map[string]any)
		is["title"], is["number"] = "onboard Qwen/Qwen3-0.6B", 5
		is["user"].(map[string]any)["login"] = maint
		is["author_association"] = "MEMBER"
	})
	start := time.Now()
	for i := 0; i < 3; i++ { // GitHub redelivers with the same GUID
		if code := wh.deliver("issues", "9a1c8e00-cc78-11e3-81ab-4c9367dc0958", opened); code != http.StatusOK {
			t.Fatalf("delivery %d: status %d", i, code)
		}
	}
	// The issue was opened with the trigger label on it: a second event.
	labeled := fixture(t, "issues.labeled.json", func(m map[string]any) {
		is := m["issue"].(map[string]any)
		is["title"], is["number"] = "onboard Qwen/Qwen3-0.6B", 5
		m["label"].(map[string]any)["name"] = "ad-onboard"
	})
	wh.deliver("issues", "9a1c8e00-cc78-11e3-81ab-000000000002", labeled)
	r.idle()
	t.Logf("delivery to 👀 and status comment: %v (with the fake GitHub and an embedded NATS)", time.Since(start))

	j := r.job(5)
	if j == nil || j.Status != bus.StatusQueued || j.Cycle != 1 || j.StatusCommentID == 0 {
		t.Fatalf("job = %+v", j)
	}
	if got := len(r.bodies(5)); got != 1 {
		t.Errorf("%d comments on the issue, want the one status comment: %q", got, r.bodies(5))
	}
	if r.eyes(5) != 1 || len(r.cycles(1)) != 1 {
		t.Errorf("%d 👀 and %d cycles, want 1 and 1", r.eyes(5), len(r.cycles(1)))
	}

	// The runner opened PR 9 and tested its head; a reviewer comments on it.
	r.setJob(5, func(j *bus.Job) {
		j.Status, j.PR, j.HeadSHA = bus.StatusWaitingReview, 9, "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	})
	remark := r.gh.AddComment(owner, repo, 9, maint, "Please use world_size_2.yaml")
	prComment := fixture(t, "issue_comment.created-2.json", func(m map[string]any) {
		m["issue"].(map[string]any)["number"] = 9
		c := m["comment"].(map[string]any)
		c["body"], c["id"] = remark.Body, remark.ID
	})
	wh.deliver("issue_comment", "9a1c8e00-0000-0000-0000-000000000003", prComment)
	// The bot's own comment comes back as an event too: ignored.
	own := fixture(t, "issue_comment.created-2.json", func(m map[string]any) {
		m["issue"].(map[string]any)["number"] = 9
		m["comment"].(map[string]any)["body"] = "[AGENT] cycle 2 started"
	})
	wh.deliver("issue_comment", "9a1c8e00-0000-0000-0000-000000000004", own)
	r.idle()
	cs := r.cycles(1)
	if len(cs) != 2 || cs[1].Kind != bus.KindFeedback || len(cs[1].Feedback) != 1 ||
		cs[1].Feedback[0].Body != "Please use world_size_2.yaml" {
		t.Fatalf("cycles = %+v, want a feedback cycle with the remark", cs)
	}
	if n := len(r.gh.Reactions(owner, repo, 9)); n != 1 {
		t.Errorf("%d reactions on the PR, want 👀 on the remark", n)
	}

	// An approval of the tested head ends the job.
	r.setJob(5, func(j *bus.Job) { j.Status = bus.StatusWaitingReview })
	approval := fixture(t, "pull_request_review.submitted-3.json", func(m map[string]any) {
		m["pull_request"].(map[string]any)["number"] = 9
		rv := m["review"].(map[string]any)
		rv["state"], rv["body"] = "approved", "nice"
		rv["user"].(map[string]any)["login"] = maint
	})
	wh.deliver("pull_request_review", "9a1c8e00-0000-0000-0000-000000000005", approval)
	r.idle()
	if j := r.job(5); j.Status != bus.StatusDone {
		t.Errorf("after approval: %+v", j)
	}
	sc, _ := r.gh.Comment(r.job(5).StatusCommentID)
	if !strings.Contains(sc.Body, "done") || sc.Edits == 0 {
		t.Errorf("status comment not edited to done: %q", sc.Body)
	}
}
