package fakegithub

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
)

// A handChecked operation is one the fake serves although the OpenAPI
// description under SpecPath lacks it: there is nothing to validate its
// requests against, so the fake checks them by hand, as strictly as GitHub
// documents them. A request that fails the check fails the test that owns
// the fake and is answered 422, as GitHub answers a bad body.
type handChecked struct {
	method string
	// path is the operation's path template, as GitHub's description writes it.
	path string
	// operationID is GitHub's name for the operation.
	operationID string
	// why says what needs it.
	why string
	// check returns why a request (its body already read) is not one GitHub
	// would accept, or nil.
	check func(r *http.Request, body []byte) error
}

// beyondDescription lists every operation served beyond the description the
// tests were given; every other request is validated against the
// description. TestBeyondDescriptionIsNotDescribed fails once the description
// gains one of them: then it belongs to the description, not this list.
var beyondDescription = []handChecked{
	{
		method:      http.MethodPost,
		path:        "/repos/{owner}/{repo}/pulls/comments/{comment_id}/reactions",
		operationID: "reactions/create-for-pull-request-review-comment",
		why: "the command worker puts 👀 on a review's line comment (docs/design.md); " +
			"the description's subset has the issue and issue comment reactions only",
		check: checkReaction,
	},
	{
		method:      http.MethodPatch,
		path:        "/repos/{owner}/{repo}/pulls/{pull_number}",
		operationID: "pulls/update",
		why:         "an update cycle rewrites the pull request's body with the new outputs and logs",
		check:       checkPullUpdate,
	},
	{
		method:      http.MethodPost,
		path:        "/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies",
		operationID: "pulls/create-reply-for-review-comment",
		why:         "an update cycle answers each review line comment in its thread",
		check:       checkReply,
	},
	{
		method:      http.MethodPost,
		path:        "/app-manifests/{code}/conversions",
		operationID: "apps/create-from-manifest",
		why: "adbot setup converts the code of the GitHub App manifest flow into the App's id, key and " +
			"webhook secret; the description's subset has no manifest operations",
		check: checkManifestConversion,
	},
}

// jsonObject reads a JSON request body as an object.
func jsonObject(r *http.Request, body []byte) (map[string]json.RawMessage, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("content type %q, want application/json", r.Header.Get("Content-Type"))
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		return nil, errors.New("body is not a JSON object")
	}
	return req, nil
}

// checkPullUpdate checks an "update a pull request" body: only the
// documented properties, with their types; state open or closed.
func checkPullUpdate(r *http.Request, body []byte) error {
	req, err := jsonObject(r, body)
	if err != nil {
		return err
	}
	for k, v := range req {
		switch k {
		case "title", "body", "base":
			var s string
			if json.Unmarshal(v, &s) != nil {
				return fmt.Errorf("/%s: %s is not a string", k, v)
			}
		case "state":
			var s string
			if json.Unmarshal(v, &s) != nil || (s != "open" && s != "closed") {
				return fmt.Errorf("/state: %s is not open or closed", v)
			}
		case "maintainer_can_modify":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return fmt.Errorf("/maintainer_can_modify: %s is not a boolean", v)
			}
		default:
			return fmt.Errorf("/%s: not a property of pulls/update", k)
		}
	}
	return nil
}

// checkReply checks a "create a reply for a review comment" body: a
// required string body and nothing else.
func checkReply(r *http.Request, body []byte) error {
	req, err := jsonObject(r, body)
	if err != nil {
		return err
	}
	raw, ok := req["body"]
	if !ok {
		return errors.New("/body: property is required")
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return fmt.Errorf("/body: %s is not a string", raw)
	}
	for k := range req {
		if k != "body" {
			return fmt.Errorf("/%s: not a property of pulls/create-reply-for-review-comment", k)
		}
	}
	return nil
}

// handCheckedOp returns the operation of beyondDescription that method and
// path (relative to the API base) name, or nil.
func handCheckedOp(method, path string) *handChecked {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i := range beyondDescription {
		op := &beyondDescription[i]
		if op.method != method {
			continue
		}
		tmpl := strings.Split(strings.TrimPrefix(op.path, "/"), "/")
		if len(tmpl) != len(seg) {
			continue
		}
		match := true
		for j, t := range tmpl {
			param := strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}")
			if (param && seg[j] == "") || (!param && t != seg[j]) {
				match = false
				break
			}
		}
		if match {
			return op
		}
	}
	return nil
}

// reactionContents are the reactions GitHub accepts (GitHub REST documentation, "Reactions").
var reactionContents = []string{"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}

// checkReaction checks a "create reaction" body as GitHub documents it (and as
// the description has it for issues and issue comments): a JSON object whose
// required content is one of reactionContents.
func checkReaction(r *http.Request, body []byte) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fmt.Errorf("content type %q, want application/json", r.Header.Get("Content-Type"))
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		return errors.New("body is not a JSON object")
	}
	raw, ok := req["content"]
	if !ok {
		return errors.New("/content: property is required")
	}
	var content string
	if err := json.Unmarshal(raw, &content); err != nil {
		return fmt.Errorf("/content: %s is not a string", raw)
	}
	if !slices.Contains(reactionContents, content) {
		return fmt.Errorf("/content: %q is not one of %q", content, reactionContents)
	}
	return nil
}
