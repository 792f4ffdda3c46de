// Package fakegithub is an in-memory GitHub REST API for tests, served by
// httptest on loopback under the GitHub Enterprise style base path /api/v3/.
//
// Every request is checked against GitHub's published OpenAPI description (the
// subset under ../shared/fixtures/github/openapi/); a request the description
// does not allow fails the test that owns the fake, naming the method, path and
// the validation error. The few operations the fake serves that the subset
// lacks (creating a reaction on a pull request review comment) are listed in
// beyondDescription, with the reason, and their requests are checked by hand
// instead. The fake keeps issue and review comments, reactions, pull
// requests, check runs, labels, git refs, installation tokens and webhook
// deliveries in memory, answers with JSON shaped like GitHub's, and records
// every request for inspection. FailNext injects 5xx and rate-limit answers.
//
// The description is strict where GitHub is lenient: adding labels to an issue
// takes {"labels": [...]} only, not go-github's bare array (AddLabelsToIssue).
//
// Use URL() as go-github's BaseURL, go-githubapp's V3APIURL or GITHUB_V3_API_URL.
package fakegithub

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BasePath is where the fake serves the v3 API, as GitHub Enterprise does.
const BasePath = "/api/v3"

// Defaults for the App the fake pretends to be.
const (
	DefaultAppID          int64 = 1
	DefaultAppSlug              = "adbot"
	DefaultInstallationID int64 = 1
)

// Request is one request the fake received.
type Request struct {
	Method string
	// Path is relative to the API base, e.g. "/repos/o/r/issues/1/comments".
	Path   string
	Query  url.Values
	Body   []byte
	Header http.Header
}

// Comment is an issue or pull request comment.
type Comment struct {
	ID     int64
	Owner  string
	Repo   string
	Issue  int
	Body   string
	User   string
	Bot    bool
	Assoc  string
	Edits  int
	Create time.Time
	Update time.Time
}

// Reaction is an emoji reaction on an issue or pull request (CommentID and
// ReviewCommentID 0), on an issue comment (CommentID), or on a pull request
// review comment (ReviewCommentID; Issue is its pull request).
type Reaction struct {
	ID              int64
	Owner           string
	Repo            string
	Issue           int
	CommentID       int64
	ReviewCommentID int64
	Content         string
	User            string
}

// ReviewComment is a pull request review comment: a comment on a line of the
// diff, part of a review.
type ReviewComment struct {
	ID    int64
	Owner string
	Repo  string
	Pull  int
	User  string
	Body  string
	Path  string
	Line  int
	// InReplyTo is the comment a reply answers (0: a thread's first).
	InReplyTo int64
	Bot       bool
}

// PullRequest is a pull request the fake knows.
type PullRequest struct {
	Number  int
	Title   string
	Body    string
	Head    string // branch name
	HeadSHA string
	Base    string
	State   string // open, closed
	Draft   bool
	Merged  bool
	User    string
	// Edits counts the PATCHes of the pull request.
	Edits int
}

// CheckRun is a check run created through the API.
type CheckRun struct {
	ID         int64
	Owner      string
	Repo       string
	Name       string
	HeadSHA    string
	Status     string
	Conclusion string
	ExternalID string
	DetailsURL string
	Title      string
	Summary    string
	Text       string
	// Updates counts PATCH requests applied.
	Updates int
}

// TokenRequest is one installation access token the fake issued.
type TokenRequest struct {
	InstallationID int64
	Repositories   []string
	RepositoryIDs  []int64
	Permissions    map[string]string
	Token          string
	Expires        time.Time
}

// Delivery is one webhook delivery in the App's delivery log.
type Delivery struct {
	ID             int64
	GUID           string
	DeliveredAt    time.Time
	Redelivery     bool
	Status         string // "OK" or e.g. "Invalid HTTP Response: 503"
	StatusCode     int
	Event          string
	Action         string
	InstallationID int64
	RepositoryID   int64
}

// Label is a repository label.
type Label struct {
	ID          int64
	Name        string
	Color       string
	Description string
}

type fault struct {
	method, prefix string
	n, status      int
	header         http.Header
}

type repoKey struct{ owner, repo string }

type issueKey struct {
	owner, repo string
	issue       int
}

// Server is a fake GitHub API.
type Server struct {
	t    testing.TB
	srv  *httptest.Server
	spec *spec

	mu             sync.Mutex
	appID          int64
	appSlug        string
	nextID         int64
	requests       []Request
	comments       []*Comment
	reactions      []*Reaction
	reviewComments []*ReviewComment
	perms          map[string]string // owner/repo/login (lower case) -> permission
	pulls          map[repoKey][]*PullRequest
	nextNumber     map[repoKey]int
	checkRuns      []*CheckRun
	labels         map[repoKey][]*Label
	issueLabels    map[issueKey][]string
	refs           map[repoKey]map[string]string // "heads/x" -> sha
	tokens         []TokenRequest
	deliveries     []Delivery
	redelivered    []int64
	installation   map[repoKey]int64
	faults         []*fault
	afterComment   func(Comment)
	manifests      map[string]*Manifest // manifest flow code -> the App it makes (manifest.go)
}

// New starts a fake GitHub for t; it is closed when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	sp, err := loadSpec()
	if err != nil {
		t.Fatalf("fakegithub: %v", err)
	}
	s := &Server{
		t:            t,
		spec:         sp,
		appID:        DefaultAppID,
		appSlug:      DefaultAppSlug,
		nextID:       1000,
		perms:        map[string]string{},
		pulls:        map[repoKey][]*PullRequest{},
		nextNumber:   map[repoKey]int{},
		labels:       map[repoKey][]*Label{},
		issueLabels:  map[issueKey][]string{},
		refs:         map[repoKey]map[string]string{},
		installation: map[repoKey]int64{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the v3 API base URL, ending in "/".
func (s *Server) URL() string { return s.srv.URL + BasePath + "/" }

// Validating reports whether requests are checked against the OpenAPI description.
func (s *Server) Validating() bool { return s.spec != nil }

// SetApp sets the App's id and slug (its bot login is slug + "[bot]").
func (s *Server) SetApp(id int64, slug string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appID, s.appSlug = id, slug
}

// BotLogin is the login the App's comments and reactions are made by.
func (s *Server) BotLogin() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appSlug + "[bot]"
}

// SetPermission sets login's permission on owner/repo: admin, write, read or none.
func (s *Server) SetPermission(owner, repo, login, perm string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perms[strings.ToLower(owner+"/"+repo+"/"+login)] = perm
}

// SetInstallation makes id the installation GET /repos/{o}/{r}/installation reports
// (DefaultInstallationID otherwise).
func (s *Server) SetInstallation(owner, repo string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installation[repoKey{owner, repo}] = id
}

// SetRef points ref ("heads/main") at sha.
func (s *Server) SetRef(owner, repo, ref, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRefLocked(repoKey{owner, repo}, ref, sha)
}

func (s *Server) setRefLocked(k repoKey, ref, sha string) {
	ref = strings.TrimPrefix(ref, "refs/")
	if s.refs[k] == nil {
		s.refs[k] = map[string]string{}
	}
	s.refs[k][ref] = sha
}

// Ref returns the sha ref points at, or "".
func (s *Server) Ref(owner, repo, ref string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refs[repoKey{owner, repo}][strings.TrimPrefix(ref, "refs/")]
}

// AddComment adds a comment by login (a human) as if written on GitHub.
func (s *Server) AddComment(owner, repo string, issue int, login, body string) Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.addCommentLocked(owner, repo, issue, login, false, body)
	return *c
}

func (s *Server) addCommentLocked(owner, repo string, issue int, login string, bot bool, body string) *Comment {
	now := time.Now().UTC().Truncate(time.Second)
	c := &Comment{ID: s.id(), Owner: owner, Repo: repo, Issue: issue, Body: body, User: login, Bot: bot,
		Assoc: "NONE", Create: now, Update: now}
	s.comments = append(s.comments, c)
	return c
}

// AddReviewComment adds a pull request review comment as if written on
// GitHub; a zero ID gets a fresh one. Owner and Repo are taken from the
// arguments.
func (s *Server) AddReviewComment(owner, repo string, c ReviewComment) ReviewComment {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Owner, c.Repo = owner, repo
	if c.ID == 0 {
		c.ID = s.id()
	}
	s.reviewComments = append(s.reviewComments, &c)
	return c
}

// ReviewComments returns the review comments (replies included) on pull
// request pull, in order.
func (s *Server) ReviewComments(owner, repo string, pull int) []ReviewComment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ReviewComment
	for _, c := range s.reviewComments {
		if c.Owner == owner && c.Repo == repo && c.Pull == pull {
			out = append(out, *c)
		}
	}
	return out
}

// AddPullRequest seeds a pull request; a zero Number takes the repository's next one.
func (s *Server) AddPullRequest(owner, repo string, pr PullRequest) PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := repoKey{owner, repo}
	if pr.Number == 0 {
		pr.Number = s.number(k)
	}
	if pr.State == "" {
		pr.State = "open"
	}
	if pr.HeadSHA == "" {
		pr.HeadSHA = randomSHA()
	}
	if pr.Base == "" {
		pr.Base = "main"
	}
	p := pr
	s.pulls[k] = append(s.pulls[k], &p)
	return p
}

// SetPullHead moves an existing pull request's head to sha.
func (s *Server) SetPullHead(owner, repo string, number int, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pullLocked(repoKey{owner, repo}, number); p != nil {
		p.HeadSHA = sha
	}
}

// ClosePull closes an existing pull request, merged or not.
func (s *Server) ClosePull(owner, repo string, number int, merged bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pullLocked(repoKey{owner, repo}, number); p != nil {
		p.State, p.Merged = "closed", merged
	}
}

// AddDelivery adds a webhook delivery to the App's delivery log. A zero ID or
// GUID is filled in; deliveries are listed newest (highest ID) first.
func (s *Server) AddDelivery(d Delivery) Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.ID == 0 {
		d.ID = s.id()
	}
	if d.GUID == "" {
		d.GUID = randomGUID()
	}
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = time.Now().UTC().Truncate(time.Second)
	}
	if d.Status == "" {
		d.Status = "OK"
		if d.StatusCode >= 300 {
			d.Status = fmt.Sprintf("Invalid HTTP Response: %d", d.StatusCode)
		}
	}
	if d.StatusCode == 0 {
		d.StatusCode = 200
	}
	s.deliveries = append(s.deliveries, d)
	return d
}

// AfterComment calls f with every comment created through the API, once it
// is stored and before it is answered: a test can kill the client there, as
// a crash between posting a comment and recording it would.
func (s *Server) AfterComment(f func(Comment)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterComment = f
}

// FailNext makes the next n requests whose method matches (any when "") and
// whose path (relative to the API base) starts with pathPrefix answer status,
// with header added. 403 and 429 answers carry GitHub's rate-limit messages.
func (s *Server) FailNext(method, pathPrefix string, n, status int, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: pathPrefix, n: n, status: status, header: header})
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Comments returns the comments on an issue or pull request, oldest first.
func (s *Server) Comments(owner, repo string, issue int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.comments, func(c *Comment) bool { return c.Owner == owner && c.Repo == repo && c.Issue == issue })
}

// Comment returns the comment with id.
func (s *Server) Comment(id int64) (Comment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.comments {
		if c.ID == id {
			return *c, true
		}
	}
	return Comment{}, false
}

// Reactions returns the reactions on an issue or pull request, on its
// comments and on its review comments.
func (s *Server) Reactions(owner, repo string, issue int) []Reaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.reactions, func(r *Reaction) bool { return r.Owner == owner && r.Repo == repo && r.Issue == issue })
}

// PullRequests returns a repository's pull requests in creation order.
func (s *Server) PullRequests(owner, repo string) []PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.pulls[repoKey{owner, repo}], func(*PullRequest) bool { return true })
}

// CheckRuns returns a repository's check runs in creation order.
func (s *Server) CheckRuns(owner, repo string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.checkRuns, func(c *CheckRun) bool { return c.Owner == owner && c.Repo == repo })
}

// copies returns a copy of each item of all that keep accepts, in order (nil
// when none does). The caller holds s.mu.
func copies[T any](all []*T, keep func(*T) bool) []T {
	var out []T
	for _, x := range all {
		if keep(x) {
			out = append(out, *x)
		}
	}
	return out
}

// IssueLabels returns the labels on an issue.
func (s *Server) IssueLabels(owner, repo string, issue int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issueLabels[issueKey{owner, repo, issue}])
}

// TokenRequests returns every installation token issued, in order.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tokens)
}

// Redelivered returns the delivery ids redelivery was asked for, in order.
func (s *Server) Redelivered() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.redelivered)
}

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func (s *Server) number(k repoKey) int {
	n := s.nextNumber[k]
	if n == 0 {
		n = 100
	}
	for s.pullLocked(k, n) != nil {
		n++
	}
	s.nextNumber[k] = n + 1
	return n
}

func (s *Server) pullLocked(k repoKey, n int) *PullRequest {
	for _, p := range s.pulls[k] {
		if p.Number == n {
			return p
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomSHA() string { return randomHex(20) }

func randomGUID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// serve records, authenticates, validates, injects faults, then answers.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	path, ok := strings.CutPrefix(r.URL.Path, BasePath)
	if !ok || path == "" {
		s.t.Errorf("fakegithub: %s %s: not under the API base %s/", r.Method, r.URL.Path, BasePath)
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Query: r.URL.Query(), Body: body, Header: r.Header.Clone()})
	s.mu.Unlock()

	if isManifestConversion(r.Method, path) {
		// The manifest flow's conversion is called before any credential exists.
		s.convertManifest(w, r, path, body)
		return
	}
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	scheme = strings.ToLower(scheme)
	if (scheme != "bearer" && scheme != "token") || strings.TrimSpace(cred) == "" {
		s.t.Errorf("fakegithub: %s %s: no Authorization header (Bearer or token)", r.Method, path)
		writeError(w, http.StatusUnauthorized, "Requires authentication")
		return
	}
	if needsJWT(path) && (scheme != "bearer" || strings.Count(cred, ".") != 2) {
		s.t.Errorf("fakegithub: %s %s: needs the App's JWT (Bearer <jwt>), got %s credentials", r.Method, path, scheme)
		writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}

	if op := handCheckedOp(r.Method, path); op != nil {
		// Not in the description (beyondDescription says why): checked by hand.
		if err := op.check(r, body); err != nil {
			s.t.Errorf("fakegithub: %s %s: request fails the fake's own check of %s (absent from GitHub's OpenAPI description): %v",
				r.Method, path, op.operationID, err)
			writeError(w, http.StatusUnprocessableEntity, "Validation Failed: "+err.Error())
			return
		}
	} else if s.spec != nil {
		vr := r.Clone(r.Context())
		u := *r.URL
		u.Path, u.RawPath = path, ""
		vr.URL = &u
		vb := body
		if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
			// ghinstallation posts "null" for a token without options; GitHub
			// takes it as no body, though the description has no null.
			vb = nil
			vr.ContentLength = 0
		}
		vr.Body = io.NopCloser(bytes.NewReader(vb))
		found, err := s.spec.validate(vr)
		if !found {
			s.t.Errorf("fakegithub: %s %s: not an operation of GitHub's OpenAPI description: %v", r.Method, path, err)
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		if err != nil {
			s.t.Errorf("fakegithub: %s %s: request violates GitHub's OpenAPI description: %v", r.Method, path, err)
			writeError(w, http.StatusBadRequest, "Invalid request: "+err.Error())
			return
		}
	}

	if f := s.takeFault(r.Method, path); f != nil {
		for k, vs := range f.header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		msg, doc := http.StatusText(f.status), "https://docs.github.com/rest"
		switch f.status {
		case http.StatusForbidden, http.StatusTooManyRequests:
			if f.header.Get("X-Ratelimit-Remaining") == "0" {
				msg = "API rate limit exceeded for installation."
				doc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
			} else {
				msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
				doc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
			}
		}
		writeJSON(w, f.status, map[string]any{"message": msg, "documentation_url": doc, "status": fmt.Sprint(f.status)})
		return
	}

	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.Header().Set("X-RateLimit-Reset", fmt.Sprint(time.Now().Add(time.Hour).Unix()))
	w.Header().Set("X-GitHub-Request-Id", strings.ToUpper(randomHex(8)))
	// Every write with a token is the App's: the fake has no user sessions.
	s.route(w, r, path, body, true)
}

func needsJWT(path string) bool {
	return path == "/app" || strings.HasPrefix(path, "/app/") ||
		(strings.HasPrefix(path, "/repos/") && strings.HasSuffix(path, "/installation"))
}

func (s *Server) takeFault(method, path string) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.method == "" || strings.EqualFold(f.method, method)) && strings.HasPrefix(path, f.prefix) {
			f.n--
			if f.n <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			return f
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest",
		"status":            fmt.Sprint(status),
	})
}
