package fakegithub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/nvidia/adbot/internal/fakegithub"
)

// recorder is a testing.TB that keeps the errors the fake reports instead of
// failing the real test, so a test can assert that a bad request is caught.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// tokenTransport adds an Authorization header.
type tokenTransport struct{ auth string }

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if t.auth != "" {
		r.Header.Set("Authorization", t.auth)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// fakeJWT has a JWT's three dot-separated parts; the fake checks only the shape.
const fakeJWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxIn0.c2ln"

func client(t testing.TB, s *fakegithub.Server, auth string) *github.Client {
	t.Helper()
	c := github.NewClient(&http.Client{Transport: tokenTransport{auth}, Timeout: 10 * time.Second})
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

func TestIssueComments(t *testing.T) {
	s := fakegithub.New(t)
	ctx := context.Background()
	gh := client(t, s, "token ghs_test")

	c, resp, err := gh.Issues.CreateComment(ctx, "o", "r", 7, &github.IssueComment{Body: github.String("[AGENT] hello")})
	if err != nil {
		t.Fatalf("create comment: %v", err)
	}
	if resp.StatusCode != http.StatusCreated || c.GetID() == 0 || c.GetUser().GetType() != "Bot" || c.GetUser().GetLogin() != "adbot[bot]" {
		t.Errorf("create comment: status %d, comment %+v", resp.StatusCode, c)
	}
	if _, _, err := gh.Issues.EditComment(ctx, "o", "r", c.GetID(), &github.IssueComment{Body: github.String("[AGENT] edited")}); err != nil {
		t.Fatalf("edit comment: %v", err)
	}
	human := s.AddComment("o", "r", 7, "alice", "please fix")
	got := s.Comments("o", "r", 7)
	if len(got) != 2 || got[0].Body != "[AGENT] edited" || got[0].Edits != 1 || got[1].ID != human.ID {
		t.Errorf("Comments = %+v", got)
	}
	for i := 0; i < 3; i++ {
		s.AddComment("o", "r", 7, "bob", fmt.Sprint("more ", i))
	}
	var all []*github.IssueComment
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 2}}
	for {
		page, resp, err := gh.Issues.ListComments(ctx, "o", "r", 7, opt)
		if err != nil {
			t.Fatalf("list comments: %v", err)
		}
		all = append(all, page...)
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if len(all) != 5 {
		t.Errorf("listed %d comments over pages, want 5", len(all))
	}
	if _, _, err := gh.Issues.EditComment(ctx, "o", "r", 999999, &github.IssueComment{Body: github.String("x")}); err == nil {
		t.Error("editing a missing comment succeeded")
	}
}

func TestReactions(t *testing.T) {
	s := fakegithub.New(t)
	ctx := context.Background()
	gh := client(t, s, "token ghs_test")
	_, resp, err := gh.Reactions.CreateIssueReaction(ctx, "o", "r", 3, "eyes")
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("first reaction: %v, %v", resp, err)
	}
	_, resp, err = gh.Reactions.CreateIssueReaction(ctx, "o", "r", 3, "eyes")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("repeated reaction: want 200, got %v, %v", resp, err)
	}
	c := s.AddComment("o", "r", 3, "alice", "/onboard status")
	if _, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, "o", "r", c.ID, "eyes"); err != nil {
		t.Fatalf("comment reaction: %v", err)
	}
	// A review's line comment: the route the description lacks, checked by hand.
	rc := s.AddReviewComment("o", "r", fakegithub.ReviewComment{Pull: 3, User: "alice", Body: "rename", Path: "a.py", Line: 2})
	for i, status := range []int{http.StatusCreated, http.StatusOK} {
		re, resp, err := gh.Reactions.CreatePullRequestCommentReaction(ctx, "o", "r", rc.ID, "eyes")
		if err != nil || resp.StatusCode != status || re.GetContent() != "eyes" {
			t.Fatalf("review comment reaction %d: want %d, got %v, %+v, %v", i+1, status, resp, re, err)
		}
	}
	if _, resp, err := gh.Reactions.CreatePullRequestCommentReaction(ctx, "o", "r", rc.ID+1000, "eyes"); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("reaction on a missing review comment: want 404, got %v, %v", resp, err)
	}
	got := s.Reactions("o", "r", 3)
	if len(got) != 3 {
		t.Fatalf("Reactions = %+v, want 3", got)
	}
	want := []fakegithub.Reaction{
		{ID: got[0].ID, Owner: "o", Repo: "r", Issue: 3, Content: "eyes", User: "adbot[bot]"},
		{ID: got[1].ID, Owner: "o", Repo: "r", Issue: 3, CommentID: c.ID, Content: "eyes", User: "adbot[bot]"},
		{ID: got[2].ID, Owner: "o", Repo: "r", Issue: 3, ReviewCommentID: rc.ID, Content: "eyes", User: "adbot[bot]"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Reactions (-got +want):\n%s", diff)
	}
}

func TestPermission(t *testing.T) {
	s := fakegithub.New(t)
	s.SetPermission("o", "r", "alice", "admin")
	gh := client(t, s, "token ghs_test")
	for login, want := range map[string]string{"alice": "admin", "Alice": "admin", "mallory": "none"} {
		p, _, err := gh.Repositories.GetPermissionLevel(context.Background(), "o", "r", login)
		if err != nil {
			t.Fatalf("permission of %s: %v", login, err)
		}
		if p.GetPermission() != want {
			t.Errorf("permission of %s = %q, want %q", login, p.GetPermission(), want)
		}
	}
}

func TestPullsRefsChecksLabels(t *testing.T) {
	s := fakegithub.New(t)
	ctx := context.Background()
	gh := client(t, s, "token ghs_test")
	s.SetRef("o", "r", "heads/main", strings.Repeat("a", 40))

	ref, _, err := gh.Git.GetRef(ctx, "o", "r", "heads/main")
	if err != nil || ref.GetObject().GetSHA() != strings.Repeat("a", 40) {
		t.Fatalf("get ref: %v %v", ref, err)
	}
	sha := strings.Repeat("b", 40)
	if _, _, err := gh.Git.CreateRef(ctx, "o", "r", &github.Reference{Ref: github.String("refs/heads/adbot/x"), Object: &github.GitObject{SHA: &sha}}); err != nil {
		t.Fatalf("create ref: %v", err)
	}
	if _, _, err := gh.Git.CreateRef(ctx, "o", "r", &github.Reference{Ref: github.String("refs/heads/adbot/x"), Object: &github.GitObject{SHA: &sha}}); err == nil {
		t.Error("creating an existing ref succeeded")
	}
	if _, _, err := gh.Git.GetRef(ctx, "o", "r", "heads/nope"); err == nil {
		t.Error("a missing ref was found")
	}

	pr, _, err := gh.PullRequests.Create(ctx, "o", "r", &github.NewPullRequest{
		Title: github.String("Onboard x"), Head: github.String("adbot/x"), Base: github.String("main"), Body: github.String("[AGENT] body"),
	})
	if err != nil {
		t.Fatalf("create pull: %v", err)
	}
	if pr.GetHead().GetSHA() != sha || pr.GetNumber() == 0 || pr.GetState() != "open" {
		t.Errorf("created pull = %+v", pr)
	}
	if _, _, err := gh.PullRequests.Create(ctx, "o", "r", &github.NewPullRequest{
		Title: github.String("again"), Head: github.String("adbot/x"), Base: github.String("main"),
	}); err == nil {
		t.Error("a second open pull for the same head was created")
	}
	got, _, err := gh.PullRequests.Get(ctx, "o", "r", pr.GetNumber())
	if err != nil || got.GetTitle() != "Onboard x" {
		t.Errorf("get pull: %v %v", got, err)
	}
	list, _, err := gh.PullRequests.List(ctx, "o", "r", &github.PullRequestListOptions{Head: "o:adbot/x", State: "open"})
	if err != nil || len(list) != 1 {
		t.Errorf("list pulls by head: %d, %v", len(list), err)
	}
	s.ClosePull("o", "r", pr.GetNumber(), true)
	if got, _, err := gh.PullRequests.Get(ctx, "o", "r", pr.GetNumber()); err != nil || got.GetState() != "closed" || !got.GetMerged() {
		t.Errorf("closed pull: %v %v", got, err)
	}
	if list, _, _ := gh.PullRequests.List(ctx, "o", "r", nil); len(list) != 0 {
		t.Errorf("closed pull listed as open")
	}
	if len(s.PullRequests("o", "r")) != 1 {
		t.Errorf("PullRequests = %+v", s.PullRequests("o", "r"))
	}

	cr, _, err := gh.Checks.CreateCheckRun(ctx, "o", "r", github.CreateCheckRunOptions{Name: "unit tests", HeadSHA: sha, Status: github.String("in_progress")})
	if err != nil {
		t.Fatalf("create check run: %v", err)
	}
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, "o", "r", cr.GetID(), github.UpdateCheckRunOptions{
		Name: "unit tests", Conclusion: github.String("success"),
		Output: &github.CheckRunOutput{Title: github.String("ok"), Summary: github.String("3 passed")},
	}); err != nil {
		t.Fatalf("update check run: %v", err)
	}
	runs := s.CheckRuns("o", "r")
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].Conclusion != "success" || runs[0].Summary != "3 passed" || runs[0].Updates != 1 {
		t.Errorf("CheckRuns = %+v", runs)
	}

	if _, _, err := gh.Issues.CreateLabel(ctx, "o", "r", &github.Label{Name: github.String("ad-onboard"), Color: github.String("0e8a16")}); err != nil {
		t.Fatalf("create label: %v", err)
	}
	if _, _, err := gh.Issues.GetLabel(ctx, "o", "r", "ad-onboard"); err != nil {
		t.Errorf("get label: %v", err)
	}
	// The description allows only the object form; go-github's AddLabelsToIssue
	// sends a bare array, so send the object.
	req, err := gh.NewRequest("POST", "repos/o/r/issues/5/labels", map[string][]string{"labels": {"ad-onboard", "running"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gh.Do(ctx, req, nil); err != nil {
		t.Fatalf("add labels: %v", err)
	}
	if _, err := gh.Issues.RemoveLabelForIssue(ctx, "o", "r", 5, "running"); err != nil {
		t.Fatalf("remove label: %v", err)
	}
	if diff := cmp.Diff(s.IssueLabels("o", "r", 5), []string{"ad-onboard"}); diff != "" {
		t.Errorf("IssueLabels (-got +want):\n%s", diff)
	}
}

func TestAppEndpoints(t *testing.T) {
	s := fakegithub.New(t)
	ctx := context.Background()
	app := client(t, s, "Bearer "+fakeJWT)
	a, _, err := app.Apps.Get(ctx, "")
	if err != nil || a.GetID() != fakegithub.DefaultAppID {
		t.Fatalf("get app: %v %v", a, err)
	}
	s.SetInstallation("o", "r", 42)
	inst, _, err := app.Apps.FindRepositoryInstallation(ctx, "o", "r")
	if err != nil || inst.GetID() != 42 {
		t.Fatalf("repo installation: %v %v", inst, err)
	}
	tok, _, err := app.Apps.CreateInstallationToken(ctx, 42, &github.InstallationTokenOptions{
		Repositories: []string{"r"},
		Permissions:  &github.InstallationPermissions{Contents: github.String("write")},
	})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	tok2, _, err := app.Apps.CreateInstallationToken(ctx, 42, &github.InstallationTokenOptions{})
	if err != nil {
		t.Fatalf("create second token: %v", err)
	}
	if tok.GetToken() == "" || tok.GetToken() == tok2.GetToken() || time.Until(tok.GetExpiresAt().Time) < 50*time.Minute {
		t.Errorf("tokens %q, %q expiring %v: want fresh, distinct, about an hour", tok.GetToken(), tok2.GetToken(), tok.GetExpiresAt())
	}
	trs := s.TokenRequests()
	if len(trs) != 2 || trs[0].InstallationID != 42 || cmp.Diff(trs[0].Repositories, []string{"r"}) != "" || trs[0].Permissions["contents"] != "write" {
		t.Errorf("TokenRequests = %+v", trs)
	}

	// Deliveries: 5 seeded, 2 failed; page through failures two at a time.
	var failed []int64
	for i := 0; i < 5; i++ {
		code := 200
		if i%2 == 1 {
			code = 503
		}
		d := s.AddDelivery(fakegithub.Delivery{Event: "issues", Action: "opened", StatusCode: code, InstallationID: 42})
		if code != 200 {
			failed = append(failed, d.ID)
		}
	}
	req, err := app.NewRequest("GET", "app/hook/deliveries?status=failure&per_page=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for req != nil {
		var page []*github.HookDelivery
		resp, err := app.Do(ctx, req, &page)
		if err != nil {
			t.Fatalf("list deliveries: %v", err)
		}
		for _, d := range page {
			got = append(got, d.GetID())
		}
		req = nil
		if resp.Cursor != "" {
			req, _ = app.NewRequest("GET", "app/hook/deliveries?status=failure&per_page=1&cursor="+url.QueryEscape(resp.Cursor), nil)
		}
	}
	want := []int64{failed[1], failed[0]} // newest first
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("failed deliveries (-got +want):\n%s", diff)
	}
	_, _, err = app.Apps.RedeliverHookDelivery(ctx, failed[0])
	var accepted *github.AcceptedError
	if err != nil && !errors.As(err, &accepted) {
		t.Fatalf("redeliver: %v", err)
	}
	if diff := cmp.Diff(s.Redelivered(), []int64{failed[0]}); diff != "" {
		t.Errorf("Redelivered (-got +want):\n%s", diff)
	}
}

func TestFailNext(t *testing.T) {
	s := fakegithub.New(t)
	gh := client(t, s, "token ghs_test")
	ctx := context.Background()
	s.FailNext("POST", "/repos/o/r/issues", 2, http.StatusForbidden, http.Header{"Retry-After": {"3"}})
	for i := 0; i < 2; i++ {
		_, _, err := gh.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: github.String("x")})
		var abuse *github.AbuseRateLimitError
		if !errors.As(err, &abuse) || abuse.GetRetryAfter() != 3*time.Second {
			t.Fatalf("attempt %d: err = %v, want a secondary rate limit with retry-after 3s", i, err)
		}
		// go-github remembers the limit; a fresh client sees the next answer.
		gh = client(t, s, "token ghs_test")
	}
	if _, _, err := gh.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: github.String("x")}); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	s.FailNext("", "/repos/o/r/pulls", 1, http.StatusBadGateway, nil)
	if _, _, err := gh.PullRequests.List(ctx, "o", "r", nil); err == nil {
		t.Error("injected 502 not seen")
	}
	if len(s.Comments("o", "r", 1)) != 1 {
		t.Errorf("comments = %d, want 1 (failed attempts make none)", len(s.Comments("o", "r", 1)))
	}
}

func TestRequestsRecorded(t *testing.T) {
	s := fakegithub.New(t)
	gh := client(t, s, "token ghs_secret")
	if _, _, err := gh.Issues.CreateComment(context.Background(), "o", "r", 1, &github.IssueComment{Body: github.String("hi")}); err != nil {
		t.Fatal(err)
	}
	rs := s.Requests()
	if len(rs) != 1 || rs[0].Method != "POST" || rs[0].Path != "/repos/o/r/issues/1/comments" ||
		!bytes.Contains(rs[0].Body, []byte(`"hi"`)) || rs[0].Header.Get("Authorization") != "token ghs_secret" {
		t.Errorf("Requests = %+v", rs)
	}
}

// TestCatchesBadRequests checks that requests GitHub would refuse fail the test.
func TestCatchesBadRequests(t *testing.T) {
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		want                           string
	}{
		{"missing required body field", "POST", "repos/o/r/issues/1/comments", "token t", `{"text":"hi"}`, 400, "violates GitHub's OpenAPI"},
		{"bad reaction content", "POST", "repos/o/r/issues/1/reactions", "token t", `{"content":"thumbsup"}`, 400, "violates GitHub's OpenAPI"},
		{"per_page not a number", "GET", "app/hook/deliveries?per_page=many", "Bearer " + fakeJWT, "", 400, "violates GitHub's OpenAPI"},
		{"not in the description", "GET", "repos/o/r/issues/1", "token t", "", 404, "not an operation"},
		{"wrong method", "DELETE", "repos/o/r/pulls/1", "token t", "", 404, "not an operation"},
		{"no auth", "GET", "repos/o/r/pulls/1", "", "", 401, "no Authorization"},
		{"installation token on an App endpoint", "GET", "app/hook/deliveries", "token ghs_x", "", 401, "needs the App's JWT"},
		// Beyond the description: the fake's own check.
		{"bad review comment reaction content", "POST", "repos/o/r/pulls/comments/5/reactions", "token t", `{"content":"thumbsup"}`, 422, "fails the fake's own check"},
		{"review comment reaction without content", "POST", "repos/o/r/pulls/comments/5/reactions", "token t", `{"emoji":"eyes"}`, 422, "fails the fake's own check"},
		{"review comment reaction content not a string", "POST", "repos/o/r/pulls/comments/5/reactions", "token t", `{"content":8}`, 422, "fails the fake's own check"},
		{"review comment reaction body not JSON", "POST", "repos/o/r/pulls/comments/5/reactions", "token t", `eyes`, 422, "fails the fake's own check"},
		{"review comment reaction without auth", "POST", "repos/o/r/pulls/comments/5/reactions", "", `{"content":"eyes"}`, 401, "no Authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			s := fakegithub.New(rec)
			if !s.Validating() && strings.Contains(tt.want, "OpenAPI") || !s.Validating() && tt.want == "not an operation" {
				t.Skip("shared fixtures absent: no OpenAPI validation")
			}
			var body *strings.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			} else {
				body = strings.NewReader("")
			}
			req, err := http.NewRequest(tt.method, s.URL()+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			errs := rec.Errors()
			t.Logf("reported: %q", errs)
			if len(errs) != 1 || !strings.Contains(errs[0], tt.want) || !strings.Contains(errs[0], tt.method) {
				t.Errorf("reported %q, want one error containing %q and the method", errs, tt.want)
			}
		})
	}
}

// TestValidRequestsPass checks that the fake reports nothing for well-formed traffic.
func TestValidRequestsPass(t *testing.T) {
	rec := &recorder{TB: t}
	s := fakegithub.New(rec)
	gh := client(t, s, "token ghs_test")
	ctx := context.Background()
	if _, _, err := gh.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: github.String("hi")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Reactions.CreateIssueReaction(ctx, "o", "r", 1, "eyes"); err != nil {
		t.Fatal(err)
	}
	rc := s.AddReviewComment("o", "r", fakegithub.ReviewComment{Pull: 1, User: "alice", Body: "rename"})
	for _, content := range []string{"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"} {
		if _, _, err := gh.Reactions.CreatePullRequestCommentReaction(ctx, "o", "r", rc.ID, content); err != nil {
			t.Fatalf("review comment reaction %q: %v", content, err)
		}
	}
	if _, _, err := gh.Issues.ListComments(ctx, "o", "r", 1, &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}); err != nil {
		t.Fatal(err)
	}
	if errs := rec.Errors(); len(errs) != 0 {
		t.Errorf("fake reported errors for valid requests: %q", errs)
	}
}
