package fakegithub

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestBeyondDescriptionIsNotDescribed keeps beyondDescription honest: an
// operation checked by hand must be one the description lacks; once the
// description has it, its requests are to be validated against it instead.
func TestBeyondDescriptionIsNotDescribed(t *testing.T) {
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if sp == nil {
		t.Skip("shared fixtures absent: no OpenAPI description to compare with")
	}
	for _, op := range beyondDescription {
		path := op.path
		for _, p := range []string{"{owner}", "{repo}"} {
			path = strings.Replace(path, p, "o", 1)
		}
		path = strings.Replace(path, "{comment_id}", "1", 1)
		path = strings.Replace(path, "{pull_number}", "2", 1)
		path = strings.Replace(path, "{code}", "abc", 1)
		if strings.Contains(path, "{") {
			t.Fatalf("%s: fill in the path parameters of %s", op.operationID, op.path)
		}
		r := httptest.NewRequest(op.method, path, strings.NewReader(`{"content":"eyes"}`))
		r.Header.Set("Content-Type", "application/json")
		if found, _ := sp.validate(r); found {
			t.Errorf("%s %s (%s) is in the description now: drop it from beyondDescription", op.method, op.path, op.operationID)
		}
		if got := handCheckedOp(op.method, path); got == nil || got.operationID != op.operationID {
			t.Errorf("handCheckedOp(%s, %s) = %v, want %s", op.method, path, got, op.operationID)
		}
	}
}

func TestHandCheckedOpMatchesOnlyItsOperation(t *testing.T) {
	for _, tt := range []struct {
		method, path string
		want         bool
	}{
		{http.MethodPost, "/repos/o/r/pulls/comments/12/reactions", true},
		{http.MethodGet, "/repos/o/r/pulls/comments/12/reactions", false},
		{http.MethodPost, "/repos/o/r/issues/comments/12/reactions", false},
		{http.MethodPost, "/repos/o/r/pulls/comments//reactions", false},
		{http.MethodPost, "/repos/o/r/pulls/comments/12/reactions/3", false},
		{http.MethodPost, "/repos/o/r/pulls/12/reactions", false},
	} {
		if got := handCheckedOp(tt.method, tt.path) != nil; got != tt.want {
			t.Errorf("handCheckedOp(%s, %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestCheckReaction(t *testing.T) {
	for _, tt := range []struct {
		name, ctype, body string
		ok                bool
	}{
		{"eyes", "application/json", `{"content":"eyes"}`, true},
		{"+1 with charset", "application/json; charset=utf-8", `{"content":"+1"}`, true},
		{"not one of the eight", "application/json", `{"content":"thumbsup"}`, false},
		{"case matters", "application/json", `{"content":"Eyes"}`, false},
		{"missing", "application/json", `{}`, false},
		{"null", "application/json", `null`, false},
		{"array", "application/json", `["eyes"]`, false},
		{"not a string", "application/json", `{"content":true}`, false},
		{"form body", "application/x-www-form-urlencoded", `content=eyes`, false},
		{"no content type", "", `{"content":"eyes"}`, false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/repos/o/r/pulls/comments/1/reactions", strings.NewReader(tt.body))
		if tt.ctype != "" {
			r.Header.Set("Content-Type", tt.ctype)
		}
		if err := checkReaction(r, []byte(tt.body)); (err == nil) != tt.ok {
			t.Errorf("%s: checkReaction = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// FuzzCheckReaction: any body is judged without panicking, and one accepted
// names one of GitHub's reactions.
func FuzzCheckReaction(f *testing.F) {
	for _, b := range []string{`{"content":"eyes"}`, `{"content":"thumbsup"}`, `{}`, `null`, `{"content":1}`, `{"content":"+1","x":2}`} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/repos/o/r/pulls/comments/1/reactions", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if checkReaction(r, []byte(body)) != nil {
			return
		}
		var req struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal([]byte(body), &req); err != nil || !slices.Contains(reactionContents, req.Content) {
			t.Errorf("accepted %q", body)
		}
	})
}

func TestHandChecksOfUpdateCycleOperations(t *testing.T) {
	for _, tt := range []struct {
		name  string
		check func(*http.Request, []byte) error
		body  string
		ok    bool
	}{
		{"pull body", checkPullUpdate, `{"title":"t","body":"b"}`, true},
		{"pull state", checkPullUpdate, `{"state":"closed"}`, true},
		{"pull bad state", checkPullUpdate, `{"state":"merged"}`, false},
		{"pull unknown field", checkPullUpdate, `{"head":"x"}`, false},
		{"pull body not a string", checkPullUpdate, `{"body":1}`, false},
		{"pull not an object", checkPullUpdate, `[]`, false},
		{"reply", checkReply, `{"body":"done"}`, true},
		{"reply without body", checkReply, `{}`, false},
		{"reply extra field", checkReply, `{"body":"x","in_reply_to":1}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			if err := tt.check(r, []byte(tt.body)); (err == nil) != tt.ok {
				t.Errorf("check(%s) = %v, want ok %v", tt.body, err, tt.ok)
			}
		})
	}
}
