package fakegithub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route answers a request that passed authentication and validation. bot says
// whether the caller used an installation token (its writes are the App's).
func (s *Server) route(w http.ResponseWriter, r *http.Request, path string, body []byte, bot bool) {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	m := r.Method
	switch {
	case m == http.MethodGet && path == "/app":
		s.getApp(w)
	case m == http.MethodGet && path == "/rate_limit":
		s.rateLimit(w)
	case m == http.MethodGet && path == "/app/hook/deliveries":
		s.listDeliveries(w, r)
	case m == http.MethodGet && len(seg) == 4 && seg[0] == "app" && seg[1] == "hook" && seg[2] == "deliveries":
		s.getDelivery(w, seg[3])
	case m == http.MethodPost && len(seg) == 5 && seg[0] == "app" && seg[2] == "deliveries" && seg[4] == "attempts":
		s.redeliver(w, seg[3])
	case m == http.MethodPost && len(seg) == 4 && seg[0] == "app" && seg[1] == "installations" && seg[3] == "access_tokens":
		s.createToken(w, seg[2], body)
	case len(seg) >= 4 && seg[0] == "repos":
		s.routeRepo(w, r, repoKey{seg[1], seg[2]}, seg[3:], body, bot)
	default:
		writeError(w, http.StatusNotFound, "Not Found")
	}
}

func (s *Server) routeRepo(w http.ResponseWriter, r *http.Request, k repoKey, seg []string, body []byte, bot bool) {
	m := r.Method
	is := func(method string, parts ...string) bool {
		if m != method || len(seg) != len(parts) {
			return false
		}
		for i, p := range parts {
			if p != "*" && p != seg[i] {
				return false
			}
		}
		return true
	}
	switch {
	case is(http.MethodGet, "installation"):
		s.repoInstallation(w, k)
	case is(http.MethodGet, "collaborators", "*", "permission"):
		s.permission(w, k, seg[1])
	case is(http.MethodPost, "issues", "*", "comments"):
		s.createComment(w, k, seg[1], body, bot)
	case is(http.MethodGet, "issues", "*", "comments"):
		s.listComments(w, r, k, seg[1])
	case is(http.MethodPatch, "issues", "comments", "*"):
		s.updateComment(w, k, seg[2], body)
	case is(http.MethodPost, "issues", "comments", "*", "reactions"):
		s.createReaction(w, k, onComment, seg[2], body, bot)
	case is(http.MethodPost, "issues", "*", "reactions"):
		s.createReaction(w, k, onIssue, seg[1], body, bot)
	case is(http.MethodPost, "pulls", "comments", "*", "reactions"):
		// Checked by hand in serve: see beyondDescription.
		s.createReaction(w, k, onReviewComment, seg[2], body, bot)
	case is(http.MethodPost, "issues", "*", "labels"):
		s.addLabels(w, k, seg[1], body)
	case is(http.MethodDelete, "issues", "*", "labels", "*"):
		s.removeLabel(w, k, seg[1], seg[3])
	case is(http.MethodPost, "labels"):
		s.createLabel(w, k, body)
	case is(http.MethodGet, "labels", "*"):
		s.getLabel(w, k, seg[1])
	case is(http.MethodPost, "pulls"):
		s.createPull(w, k, body, bot)
	case is(http.MethodGet, "pulls"):
		s.listPulls(w, r, k)
	case is(http.MethodGet, "pulls", "*"):
		s.getPull(w, k, seg[1])
	case is(http.MethodPatch, "pulls", "*"):
		// Checked by hand in serve: see beyondDescription.
		s.editPull(w, k, seg[1], body)
	case is(http.MethodPost, "pulls", "*", "comments", "*", "replies"):
		// Checked by hand in serve: see beyondDescription.
		s.replyReviewComment(w, k, seg[1], seg[3], body, bot)
	case is(http.MethodPost, "check-runs"):
		s.createCheckRun(w, k, body)
	case is(http.MethodPatch, "check-runs", "*"):
		s.updateCheckRun(w, k, seg[1], body)
	case is(http.MethodPost, "git", "refs"):
		s.createRef(w, k, body)
	case m == http.MethodGet && len(seg) >= 3 && seg[0] == "git" && seg[1] == "ref":
		s.getRef(w, k, strings.Join(seg[2:], "/"))
	default:
		writeError(w, http.StatusNotFound, "Not Found")
	}
}

// ---- JSON shapes ----

func (s *Server) apiURL(format string, a ...any) string {
	return strings.TrimSuffix(s.URL(), "/") + fmt.Sprintf(format, a...)
}

func (s *Server) userJSON(login string, bot bool) map[string]any {
	typ := "User"
	if bot {
		typ = "Bot"
	}
	id := int64(0)
	for _, c := range login {
		id = id*31 + int64(c)
	}
	if id < 0 {
		id = -id
	}
	u := s.apiURL("/users/%s", url.PathEscape(login))
	return map[string]any{
		"login": login, "id": id%1_000_000 + 1, "node_id": "U_" + login, "type": typ, "site_admin": false,
		"avatar_url": "https://avatars.githubusercontent.com/u/1", "gravatar_id": "", "url": u,
		"html_url": "https://github.com/" + login, "followers_url": u + "/followers",
		"following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}",
		"starred_url": u + "/starred{/owner}{/repo}", "subscriptions_url": u + "/subscriptions",
		"organizations_url": u + "/orgs", "repos_url": u + "/repos", "events_url": u + "/events{/privacy}",
		"received_events_url": u + "/received_events",
	}
}

func (s *Server) appJSON() map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	return map[string]any{
		"id": s.appID, "slug": s.appSlug, "node_id": "A_" + s.appSlug, "name": s.appSlug,
		"owner": s.userJSON("adbot-owner", false), "description": "fake App", "external_url": "https://example.invalid",
		"html_url": "https://github.com/apps/" + s.appSlug, "created_at": now, "updated_at": now,
		"permissions": map[string]string{"issues": "write", "pull_requests": "write", "contents": "write", "checks": "write"},
		"events":      []string{"issues", "issue_comment", "pull_request", "pull_request_review"},
	}
}

func (s *Server) commentJSON(c *Comment) map[string]any {
	out := map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("IC_%d", c.ID), "body": c.Body,
		"url":        s.apiURL("/repos/%s/%s/issues/comments/%d", c.Owner, c.Repo, c.ID),
		"html_url":   fmt.Sprintf("https://github.com/%s/%s/issues/%d#issuecomment-%d", c.Owner, c.Repo, c.Issue, c.ID),
		"issue_url":  s.apiURL("/repos/%s/%s/issues/%d", c.Owner, c.Repo, c.Issue),
		"user":       s.userJSON(c.User, c.Bot),
		"created_at": c.Create.Format(time.RFC3339), "updated_at": c.Update.Format(time.RFC3339),
		"author_association": c.Assoc,
	}
	if c.Bot {
		out["performed_via_github_app"] = s.appJSON()
	}
	return out
}

func (s *Server) pullJSON(k repoKey, p *PullRequest) map[string]any {
	base := s.apiURL("/repos/%s/%s", k.owner, k.repo)
	repo := map[string]any{"id": 1, "name": k.repo, "full_name": k.owner + "/" + k.repo, "owner": s.userJSON(k.owner, false)}
	var mergedAt any
	if p.Merged {
		mergedAt = time.Now().UTC().Format(time.RFC3339)
	}
	return map[string]any{
		"id": int64(p.Number) + 5_000_000, "node_id": fmt.Sprintf("PR_%d", p.Number), "number": p.Number,
		"url":      fmt.Sprintf("%s/pulls/%d", base, p.Number),
		"html_url": fmt.Sprintf("https://github.com/%s/%s/pull/%d", k.owner, k.repo, p.Number),
		"state":    p.State, "title": p.Title, "body": p.Body, "draft": p.Draft, "merged": p.Merged, "merged_at": mergedAt,
		"locked": false, "user": s.userJSON(p.User, strings.HasSuffix(p.User, "[bot]")),
		"head":   map[string]any{"ref": p.Head, "sha": p.HeadSHA, "label": k.owner + ":" + p.Head, "repo": repo},
		"base":   map[string]any{"ref": p.Base, "sha": randomSHA(), "label": k.owner + ":" + p.Base, "repo": repo},
		"labels": []any{}, "created_at": time.Now().UTC().Format(time.RFC3339), "updated_at": time.Now().UTC().Format(time.RFC3339),
	}
}

func (s *Server) checkRunJSON(c *CheckRun) map[string]any {
	var concl any
	if c.Conclusion != "" {
		concl = c.Conclusion
	}
	return map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("CR_%d", c.ID), "name": c.Name, "head_sha": c.HeadSHA,
		"status": c.Status, "conclusion": concl, "external_id": c.ExternalID, "details_url": c.DetailsURL,
		"url":      s.apiURL("/repos/%s/%s/check-runs/%d", c.Owner, c.Repo, c.ID),
		"html_url": fmt.Sprintf("https://github.com/%s/%s/runs/%d", c.Owner, c.Repo, c.ID),
		"output":   map[string]any{"title": c.Title, "summary": c.Summary, "text": c.Text, "annotations_count": 0},
		"app":      s.appJSON(), "pull_requests": []any{},
	}
}

func (s *Server) labelJSON(k repoKey, l *Label) map[string]any {
	return map[string]any{
		"id": l.ID, "node_id": fmt.Sprintf("LA_%d", l.ID), "name": l.Name, "color": l.Color,
		"description": l.Description, "default": false,
		"url": s.apiURL("/repos/%s/%s/labels/%s", k.owner, k.repo, url.PathEscape(l.Name)),
	}
}

func (s *Server) deliveryJSON(d Delivery) map[string]any {
	var action any
	if d.Action != "" {
		action = d.Action
	}
	return map[string]any{
		"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.Format(time.RFC3339), "redelivery": d.Redelivery,
		"duration": 0.25, "status": d.Status, "status_code": d.StatusCode, "event": d.Event, "action": action,
		"installation_id": d.InstallationID, "repository_id": d.RepositoryID,
	}
}

// ---- handlers ----

func (s *Server) getApp(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.appJSON())
}

func (s *Server) rateLimit(w http.ResponseWriter) {
	reset := time.Now().Add(time.Hour).Unix()
	core := map[string]any{"limit": 5000, "remaining": 4999, "reset": reset, "used": 1}
	writeJSON(w, http.StatusOK, map[string]any{"resources": map[string]any{"core": core}, "rate": core})
}

func (s *Server) repoInstallation(w http.ResponseWriter, k repoKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.installation[k]
	if !ok {
		id = DefaultInstallationID
	}
	now := time.Now().UTC().Format(time.RFC3339)
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "app_id": s.appID, "app_slug": s.appSlug, "target_id": 1, "target_type": "Organization",
		"account":              s.userJSON(k.owner, false),
		"repository_selection": "all", "single_file_name": nil, "suspended_by": nil, "suspended_at": nil,
		"access_tokens_url": s.apiURL("/app/installations/%d/access_tokens", id),
		"repositories_url":  s.apiURL("/installation/repositories"),
		"html_url":          fmt.Sprintf("https://github.com/settings/installations/%d", id),
		"events":            []string{"issues"}, "permissions": map[string]string{"issues": "write"},
		"created_at": now, "updated_at": now,
	})
}

func (s *Server) createToken(w http.ResponseWriter, idStr string, body []byte) {
	id, ok := parseID(w, idStr)
	if !ok {
		return
	}
	var req struct {
		Repositories  []string          `json:"repositories"`
		RepositoryIDs []int64           `json:"repository_ids"`
		Permissions   map[string]string `json:"permissions"`
	}
	if len(body) > 0 && string(body) != "null" {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "Invalid request body")
			return
		}
	}
	tr := TokenRequest{
		InstallationID: id, Repositories: req.Repositories, RepositoryIDs: req.RepositoryIDs, Permissions: req.Permissions,
		Token: "ghs_" + randomHex(18), Expires: time.Now().UTC().Add(time.Hour).Truncate(time.Second),
	}
	s.mu.Lock()
	s.tokens = append(s.tokens, tr)
	s.mu.Unlock()
	out := map[string]any{"token": tr.Token, "expires_at": tr.Expires.Format(time.RFC3339), "repository_selection": "selected"}
	if tr.Permissions != nil {
		out["permissions"] = tr.Permissions
	} else {
		out["permissions"] = map[string]string{"issues": "write", "pull_requests": "write", "contents": "write", "checks": "write"}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	perPage := 30
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	status := q.Get("status")
	var after int64 = -1
	if c := q.Get("cursor"); c != "" {
		v, err := strconv.ParseInt(strings.TrimPrefix(c, "v1_"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "Bad cursor")
			return
		}
		after = v
	}
	s.mu.Lock()
	ds := slices.Clone(s.deliveries)
	s.mu.Unlock()
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID > ds[j].ID })
	var sel []Delivery
	for _, d := range ds {
		if after >= 0 && d.ID >= after {
			continue
		}
		ok := d.StatusCode < 300
		if (status == "success" && !ok) || (status == "failure" && ok) {
			continue
		}
		sel = append(sel, d)
	}
	more := len(sel) > perPage
	if more {
		sel = sel[:perPage]
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("per_page", strconv.Itoa(perPage))
		nq.Set("cursor", fmt.Sprintf("v1_%d", sel[len(sel)-1].ID))
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, s.apiURL("/app/hook/deliveries"), nq.Encode()))
	}
	out := make([]map[string]any, 0, len(sel))
	for _, d := range sel {
		out = append(out, s.deliveryJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) findDelivery(idStr string) (Delivery, bool) {
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil {
		return Delivery{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if d.ID == id {
			return d, true
		}
	}
	return Delivery{}, false
}

func (s *Server) getDelivery(w http.ResponseWriter, idStr string) {
	d, ok := s.findDelivery(idStr)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	out := s.deliveryJSON(d)
	out["request"] = map[string]any{"headers": map[string]string{"X-GitHub-Event": d.Event, "X-GitHub-Delivery": d.GUID}, "payload": map[string]any{}}
	out["response"] = map[string]any{"headers": map[string]string{}, "payload": ""}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) redeliver(w http.ResponseWriter, idStr string) {
	d, ok := s.findDelivery(idStr)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	s.mu.Lock()
	s.redelivered = append(s.redelivered, d.ID)
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

func (s *Server) permission(w http.ResponseWriter, k repoKey, login string) {
	s.mu.Lock()
	perm, ok := s.perms[strings.ToLower(k.owner+"/"+k.repo+"/"+login)]
	s.mu.Unlock()
	if !ok {
		perm = "none"
	}
	role := perm
	switch perm {
	case "none":
		role = "none"
	case "read":
		role = "read"
	}
	writeJSON(w, http.StatusOK, map[string]any{"permission": perm, "role_name": role, "user": s.userJSON(login, false)})
}

func parseIssue(w http.ResponseWriter, s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		writeError(w, http.StatusNotFound, "Not Found")
		return 0, false
	}
	return n, true
}

// parseID reads the id in a path, answering 404 when it is not a number.
func parseID(w http.ResponseWriter, s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return 0, false
	}
	return id, true
}

// commentBody reads a comment's body from a request as GitHub validates it,
// answering 422 when it is missing or too long.
func commentBody(w http.ResponseWriter, body []byte) (string, bool) {
	var req struct {
		Body string `json:"body"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Body == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed: body is missing")
		return "", false
	}
	if len([]rune(req.Body)) > 65536 {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed: body is too long (maximum is 65536 characters)")
		return "", false
	}
	return req.Body, true
}

// login is who a request acts as: the App's bot with an installation token, else a person.
func (s *Server) login(bot bool) string {
	if bot {
		return s.appSlug + "[bot]"
	}
	return "octocat"
}

func (s *Server) createComment(w http.ResponseWriter, k repoKey, issueStr string, body []byte, bot bool) {
	n, ok := parseIssue(w, issueStr)
	if !ok {
		return
	}
	text, ok := commentBody(w, body)
	if !ok {
		return
	}
	s.mu.Lock()
	login := s.login(bot)
	c := s.addCommentLocked(k.owner, k.repo, n, login, bot, text)
	out, made, after := s.commentJSON(c), *c, s.afterComment
	s.mu.Unlock()
	if after != nil {
		after(made) // stored, not yet answered: where a client can die
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, k repoKey, issueStr string) {
	n, ok := parseIssue(w, issueStr)
	if !ok {
		return
	}
	s.mu.Lock()
	var all []map[string]any
	for _, c := range s.comments {
		if c.Owner == k.owner && c.Repo == k.repo && c.Issue == n {
			all = append(all, s.commentJSON(c))
		}
	}
	s.mu.Unlock()
	s.writePage(w, r, all)
}

// writePage answers one page (per_page, page) of items with GitHub's Link header.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, all []map[string]any) {
	q := r.URL.Query()
	perPage, page := 30, 1
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	lo := min((page-1)*perPage, len(all))
	hi := min(lo+perPage, len(all))
	if hi < len(all) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("page", strconv.Itoa(page+1))
		nq.Set("per_page", strconv.Itoa(perPage))
		u := strings.TrimSuffix(s.srv.URL, "/") + r.URL.Path + "?" + nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, u))
	}
	out := all[lo:hi]
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateComment(w http.ResponseWriter, k repoKey, idStr string, body []byte) {
	id, ok := parseID(w, idStr)
	if !ok {
		return
	}
	text, ok := commentBody(w, body)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.comments {
		if c.ID == id && c.Owner == k.owner && c.Repo == k.repo {
			c.Body = text
			c.Edits++
			c.Update = time.Now().UTC().Truncate(time.Second)
			writeJSON(w, http.StatusOK, s.commentJSON(c))
			return
		}
	}
	writeError(w, http.StatusNotFound, "Not Found")
}

// What a reaction is created on.
const (
	onIssue = iota
	onComment
	onReviewComment
)

// createReaction reacts to the issue, issue comment or review comment idStr
// names: 201 with a new reaction, 200 with the same one made before.
func (s *Server) createReaction(w http.ResponseWriter, k repoKey, on int, idStr string, body []byte, bot bool) {
	var req struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	login := s.login(bot)
	target := Reaction{Owner: k.owner, Repo: k.repo, Content: req.Content, User: login}
	switch on {
	case onIssue:
		n, err := strconv.Atoi(idStr)
		if err != nil {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		target.Issue = n
	case onComment:
		id, ok := parseID(w, idStr)
		if !ok {
			return
		}
		i := slices.IndexFunc(s.comments, func(c *Comment) bool { return c.ID == id && c.Owner == k.owner && c.Repo == k.repo })
		if i < 0 {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		target.CommentID, target.Issue = id, s.comments[i].Issue
	case onReviewComment:
		id, ok := parseID(w, idStr)
		if !ok {
			return
		}
		i := slices.IndexFunc(s.reviewComments, func(c *ReviewComment) bool { return c.ID == id && c.Owner == k.owner && c.Repo == k.repo })
		if i < 0 {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		target.ReviewCommentID, target.Issue = id, s.reviewComments[i].Pull
	}
	for _, r := range s.reactions {
		if r.Owner == target.Owner && r.Repo == target.Repo && r.Issue == target.Issue &&
			r.CommentID == target.CommentID && r.ReviewCommentID == target.ReviewCommentID &&
			r.Content == target.Content && r.User == target.User {
			writeJSON(w, http.StatusOK, s.reactionJSON(r, bot))
			return
		}
	}
	target.ID = s.id()
	s.reactions = append(s.reactions, &target)
	writeJSON(w, http.StatusCreated, s.reactionJSON(&target, bot))
}

func (s *Server) reactionJSON(r *Reaction, bot bool) map[string]any {
	return map[string]any{
		"id": r.ID, "node_id": fmt.Sprintf("REA_%d", r.ID), "content": r.Content,
		"user": s.userJSON(r.User, bot), "created_at": time.Now().UTC().Format(time.RFC3339),
	}
}

func (s *Server) findLabel(k repoKey, name string) *Label {
	for _, l := range s.labels[k] {
		if strings.EqualFold(l.Name, name) {
			return l
		}
	}
	return nil
}

func (s *Server) createLabel(w http.ResponseWriter, k repoKey, body []byte) {
	var req struct {
		Name        string `json:"name"`
		Color       string `json:"color"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Name == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.findLabel(k, req.Name) != nil {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed: already_exists")
		return
	}
	if req.Color == "" {
		req.Color = "ededed"
	}
	l := &Label{ID: s.id(), Name: req.Name, Color: strings.TrimPrefix(req.Color, "#"), Description: req.Description}
	s.labels[k] = append(s.labels[k], l)
	writeJSON(w, http.StatusCreated, s.labelJSON(k, l))
}

func (s *Server) getLabel(w http.ResponseWriter, k repoKey, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.findLabel(k, name)
	if l == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.labelJSON(k, l))
}

func (s *Server) issueLabelsJSON(k repoKey, n int) []map[string]any {
	out := []map[string]any{}
	for _, name := range s.issueLabels[issueKey{k.owner, k.repo, n}] {
		l := s.findLabel(k, name)
		if l == nil {
			l = &Label{ID: s.id(), Name: name, Color: "ededed"}
			s.labels[k] = append(s.labels[k], l)
		}
		out = append(out, s.labelJSON(k, l))
	}
	return out
}

func (s *Server) addLabels(w http.ResponseWriter, k repoKey, issueStr string, body []byte) {
	n, ok := parseIssue(w, issueStr)
	if !ok {
		return
	}
	var names []string
	if err := json.Unmarshal(body, &names); err != nil {
		var obj struct {
			Labels []json.RawMessage `json:"labels"`
		}
		if err := json.Unmarshal(body, &obj); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
			return
		}
		for _, raw := range obj.Labels {
			var name string
			var named struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &name) == nil {
				names = append(names, name)
			} else if json.Unmarshal(raw, &named) == nil {
				names = append(names, named.Name)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ik := issueKey{k.owner, k.repo, n}
	for _, name := range names {
		if !slices.Contains(s.issueLabels[ik], name) {
			s.issueLabels[ik] = append(s.issueLabels[ik], name)
		}
	}
	writeJSON(w, http.StatusOK, s.issueLabelsJSON(k, n))
}

func (s *Server) removeLabel(w http.ResponseWriter, k repoKey, issueStr, name string) {
	n, ok := parseIssue(w, issueStr)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ik := issueKey{k.owner, k.repo, n}
	i := slices.Index(s.issueLabels[ik], name)
	if i < 0 {
		writeError(w, http.StatusNotFound, "Label does not exist")
		return
	}
	s.issueLabels[ik] = slices.Delete(s.issueLabels[ik], i, i+1)
	writeJSON(w, http.StatusOK, s.issueLabelsJSON(k, n))
}

func (s *Server) createPull(w http.ResponseWriter, k repoKey, body []byte, bot bool) {
	var req struct {
		Title string `json:"title"`
		Head  string `json:"head"`
		Base  string `json:"base"`
		Body  string `json:"body"`
		Draft bool   `json:"draft"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Head == "" || req.Base == "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	head := req.Head
	if _, b, ok := strings.Cut(head, ":"); ok {
		head = b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pulls[k] {
		if p.Head == head && p.Base == req.Base && p.State == "open" {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("Validation Failed: A pull request already exists for %s:%s.", k.owner, head))
			return
		}
	}
	sha := s.refs[k]["heads/"+head]
	if sha == "" {
		sha = randomSHA()
	}
	login := s.login(bot)
	p := &PullRequest{Number: s.number(k), Title: req.Title, Body: req.Body, Head: head, HeadSHA: sha,
		Base: req.Base, State: "open", Draft: req.Draft, User: login}
	s.pulls[k] = append(s.pulls[k], p)
	writeJSON(w, http.StatusCreated, s.pullJSON(k, p))
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request, k repoKey) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	head := q.Get("head")
	s.mu.Lock()
	var all []map[string]any
	for _, p := range s.pulls[k] {
		if state != "all" && p.State != state {
			continue
		}
		if head != "" && head != k.owner+":"+p.Head && head != p.Head {
			continue
		}
		if b := q.Get("base"); b != "" && b != p.Base {
			continue
		}
		all = append(all, s.pullJSON(k, p))
	}
	s.mu.Unlock()
	s.writePage(w, r, all)
}

func (s *Server) getPull(w http.ResponseWriter, k repoKey, numStr string) {
	n, ok := parseIssue(w, numStr)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullLocked(k, n)
	if p == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.pullJSON(k, p))
}

func (s *Server) editPull(w http.ResponseWriter, k repoKey, numStr string, body []byte) {
	n, ok := parseIssue(w, numStr)
	if !ok {
		return
	}
	var req struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		State *string `json:"state"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pullLocked(k, n)
	if p == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if req.Title != nil {
		p.Title = *req.Title
	}
	if req.Body != nil {
		p.Body = *req.Body
	}
	if req.State != nil {
		p.State = *req.State
	}
	p.Edits++
	writeJSON(w, http.StatusOK, s.pullJSON(k, p))
}

func (s *Server) replyReviewComment(w http.ResponseWriter, k repoKey, numStr, idStr string, body []byte, bot bool) {
	n, ok := parseIssue(w, numStr)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	text, ok := commentBody(w, body)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.reviewComments, func(c *ReviewComment) bool {
		return c.ID == id && c.Owner == k.owner && c.Repo == k.repo && c.Pull == n
	})
	if i < 0 {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	orig := s.reviewComments[i]
	c := &ReviewComment{ID: s.id(), Owner: k.owner, Repo: k.repo, Pull: n, User: s.login(bot), Body: text,
		Path: orig.Path, Line: orig.Line, InReplyTo: id, Bot: bot}
	s.reviewComments = append(s.reviewComments, c)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("PRRC_%d", c.ID), "body": c.Body, "path": c.Path, "line": c.Line,
		"in_reply_to_id": id, "user": s.userJSON(c.User, bot),
		"url":      s.apiURL("/repos/%s/%s/pulls/comments/%d", k.owner, k.repo, c.ID),
		"html_url": fmt.Sprintf("https://github.com/%s/%s/pull/%d#discussion_r%d", k.owner, k.repo, n, c.ID),
	})
}

type checkRunReq struct {
	Name       *string `json:"name"`
	HeadSHA    *string `json:"head_sha"`
	Status     *string `json:"status"`
	Conclusion *string `json:"conclusion"`
	ExternalID *string `json:"external_id"`
	DetailsURL *string `json:"details_url"`
	Output     *struct {
		Title   string `json:"title"`
		Summary string `json:"summary"`
		Text    string `json:"text"`
	} `json:"output"`
}

func (c *CheckRun) apply(req checkRunReq) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.Name, req.Name)
	set(&c.HeadSHA, req.HeadSHA)
	set(&c.Status, req.Status)
	set(&c.Conclusion, req.Conclusion)
	set(&c.ExternalID, req.ExternalID)
	set(&c.DetailsURL, req.DetailsURL)
	if req.Output != nil {
		c.Title, c.Summary, c.Text = req.Output.Title, req.Output.Summary, req.Output.Text
	}
	if c.Conclusion != "" {
		c.Status = "completed"
	}
}

func (s *Server) createCheckRun(w http.ResponseWriter, k repoKey, body []byte) {
	var req checkRunReq
	if err := json.Unmarshal(body, &req); err != nil || req.Name == nil || req.HeadSHA == nil {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &CheckRun{ID: s.id(), Owner: k.owner, Repo: k.repo, Status: "queued"}
	c.apply(req)
	s.checkRuns = append(s.checkRuns, c)
	writeJSON(w, http.StatusCreated, s.checkRunJSON(c))
}

func (s *Server) updateCheckRun(w http.ResponseWriter, k repoKey, idStr string, body []byte) {
	id, ok := parseID(w, idStr)
	if !ok {
		return
	}
	var req checkRunReq
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.checkRuns {
		if c.ID == id && c.Owner == k.owner && c.Repo == k.repo {
			c.apply(req)
			c.Updates++
			writeJSON(w, http.StatusOK, s.checkRunJSON(c))
			return
		}
	}
	writeError(w, http.StatusNotFound, "Not Found")
}

func (s *Server) refJSON(k repoKey, ref, sha string) map[string]any {
	return map[string]any{
		"ref": "refs/" + ref, "node_id": "REF_" + ref,
		"url":    s.apiURL("/repos/%s/%s/git/refs/%s", k.owner, k.repo, ref),
		"object": map[string]any{"type": "commit", "sha": sha, "url": s.apiURL("/repos/%s/%s/git/commits/%s", k.owner, k.repo, sha)},
	}
}

func (s *Server) getRef(w http.ResponseWriter, k repoKey, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.refs[k][ref]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.refJSON(k, ref, sha))
}

func (s *Server) createRef(w http.ResponseWriter, k repoKey, body []byte) {
	var req struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	}
	if err := json.Unmarshal(body, &req); err != nil || !strings.HasPrefix(req.Ref, "refs/") || strings.Count(req.Ref, "/") < 2 {
		writeError(w, http.StatusUnprocessableEntity, "Reference name must start with 'refs/' and have at least two slashes.")
		return
	}
	ref := strings.TrimPrefix(req.Ref, "refs/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refs[k][ref]; ok {
		writeError(w, http.StatusUnprocessableEntity, "Reference already exists")
		return
	}
	s.setRefLocked(k, ref, req.SHA)
	writeJSON(w, http.StatusCreated, s.refJSON(k, ref, req.SHA))
}
