package systemtest_test

import (
	"encoding/json"
	"testing"

	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/fixtures"
)

// Deliveries are GitHub's real payloads (../shared/fixtures/github/webhooks)
// moved to NVIDIA/TensorRT-LLM, installation 42, with the scenario's people,
// numbers and text.

func payload(t testing.TB, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixtures.Read(t, "github", "webhooks", name), &m); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	rp := m["repository"].(map[string]any)
	rp["name"], rp["full_name"] = repo, owner+"/"+repo
	rp["owner"].(map[string]any)["login"] = owner
	m["installation"] = map[string]any{"id": installation}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func person(m map[string]any, login string) {
	m["login"], m["type"], m["id"] = login, "User", len(login)*1000+7
}

// issueOpened is issues.opened for an issue by user.
func issueOpened(t testing.TB, number int, title, user, assoc string) []byte {
	return payload(t, "issues.opened.json", func(m map[string]any) {
		is := obj(m, "issue")
		is["number"], is["id"], is["title"], is["body"], is["author_association"] = number, 7000000+number, title, "", assoc
		person(obj(is, "user"), user)
		person(obj(m, "sender"), user)
	})
}

// issueComment is issue_comment.created for c, on an issue or a pull request.
func issueComment(t testing.TB, c fakegithub.Comment, isPR bool, assoc string) []byte {
	name := "issue_comment.created-3.json"
	if isPR {
		name = "issue_comment.created-2.json" // its issue is a pull request
	}
	return payload(t, name, func(m map[string]any) {
		is := obj(m, "issue")
		is["number"] = c.Issue
		if !isPR {
			delete(is, "pull_request")
		}
		cm := obj(m, "comment")
		cm["id"], cm["body"], cm["author_association"] = c.ID, c.Body, assoc
		person(obj(cm, "user"), c.User)
		person(obj(m, "sender"), c.User)
	})
}

// review is pull_request_review.submitted on pull request pr.
func review(t testing.TB, pr int, id int64, state, body, commitID, user, assoc string) []byte {
	return payload(t, "pull_request_review.submitted.json", func(m map[string]any) {
		rv := obj(m, "review")
		rv["id"], rv["state"], rv["commit_id"], rv["author_association"] = id, state, commitID, assoc
		if body == "" {
			rv["body"] = nil
		} else {
			rv["body"] = body
		}
		person(obj(rv, "user"), user)
		obj(m, "pull_request")["number"] = pr
		person(obj(m, "sender"), user)
	})
}

// reviewComment is pull_request_review_comment.created: a line comment of review reviewID.
func reviewComment(t testing.TB, pr int, id, reviewID int64, path string, line int, body, commitID, user, assoc string) []byte {
	return payload(t, "pull_request_review_comment.created.json", func(m map[string]any) {
		cm := obj(m, "comment")
		cm["id"], cm["body"], cm["path"], cm["line"], cm["original_line"] = id, body, path, line, line
		cm["commit_id"], cm["pull_request_review_id"], cm["author_association"] = commitID, reviewID, assoc
		person(obj(cm, "user"), user)
		obj(m, "pull_request")["number"] = pr
		person(obj(m, "sender"), user)
	})
}

// issueLabeled is issues.labeled: label added to an issue by user.
func issueLabeled(t testing.TB, number int, title, label, user string) []byte {
	return payload(t, "issues.labeled.json", func(m map[string]any) {
		is := obj(m, "issue")
		is["number"], is["id"], is["title"], is["body"] = number, 7000000+number, title, ""
		person(obj(is, "user"), user)
		obj(m, "label")["name"] = label
		person(obj(m, "sender"), user)
	})
}

// botEcho is issue_comment.created for a comment the App itself wrote: GitHub
// sends the bot its own comments too.
func botEcho(t testing.TB, c fakegithub.Comment, isPR bool) []byte {
	b := issueComment(t, c, isPR, "NONE")
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	bot := map[string]any{"login": "adbot[bot]", "type": "Bot", "id": 9000001}
	m["sender"] = bot
	obj(m, "comment")["user"] = bot
	obj(m, "comment")["performed_via_github_app"] = map[string]any{"id": fakegithub.DefaultAppID, "slug": fakegithub.DefaultAppSlug}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pullClosed is pull_request.closed for pull request pr, merged or not, by user.
func pullClosed(t testing.TB, pr int, merged bool, user string) []byte {
	return payload(t, "pull_request.closed.json", func(m map[string]any) {
		m["number"] = pr
		p := obj(m, "pull_request")
		p["number"], p["merged"], p["state"] = pr, merged, "closed"
		person(obj(m, "sender"), user)
	})
}
