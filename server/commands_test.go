package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/internal/fixtures"
)

func TestSignTestVector(t *testing.T) {
	// docs.github.com's test vector ("Validating webhook deliveries").
	got := Sign("It's a Secret to Everybody", []byte("Hello, World!"))
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestSendCommand(t *testing.T) {
	payload := fixtures.Read(t, "github", "webhooks", "issues.opened.json")
	file := writeFile(t, "issues.opened.json", string(payload))
	type seen struct {
		hdr  http.Header
		body []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Clone(), b}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("queued"))
	}))
	defer srv.Close()

	err := SendCommand(context.Background(), []string{"--url", srv.URL, "--secret", "s3cret", "--delivery", "guid-1", "issues", file})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	s := <-got
	if !bytes.Equal(s.body, payload) {
		t.Error("body posted differs from the file's bytes")
	}
	if err := github.ValidateSignature(s.hdr.Get("X-Hub-Signature-256"), payload, []byte("s3cret")); err != nil {
		t.Errorf("signature: %v", err)
	}
	for k, want := range map[string]string{"X-GitHub-Event": "issues", "X-GitHub-Delivery": "guid-1", "Content-Type": "application/json"} {
		if s.hdr.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, s.hdr.Get(k), want)
		}
	}

	// Without --delivery a random GUID is sent.
	if err := SendCommand(context.Background(), []string{"--url", srv.URL, "--secret", "s3cret", "issues", file}); err != nil {
		t.Fatal(err)
	}
	s = <-got
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(s.hdr.Get("X-GitHub-Delivery")) {
		t.Errorf("default delivery id %q is not a GUID", s.hdr.Get("X-GitHub-Delivery"))
	}
}

func TestSendCommandErrors(t *testing.T) {
	notJSON := writeFile(t, "x.json", "action=opened")
	ok := writeFile(t, "ok.json", `{}`)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
	}))
	defer failing.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--secret", "s", "issues", filepath.Join(t.TempDir(), "nope.json")}, "read payload"},
		{"not JSON", []string{"--secret", "s", "issues", notJSON}, "is not JSON"},
		{"no secret", []string{"--secret", "", "issues", ok}, "no webhook secret"},
		{"one argument", []string{"--secret", "s", "issues"}, "want EVENT and FILE"},
		{"server refuses", []string{"--url", failing.URL, "--secret", "s", "issues", ok}, "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := SendCommand(context.Background(), tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCommandsHelp(t *testing.T) {
	for name, cmd := range map[string]func(context.Context, []string) error{"serve": ServeCommand, "dev": DevCommand(nopWorkflow), "send": SendCommand} {
		// flag writes usage to stderr; keep the test output quiet.
		stderr := os.Stderr
		os.Stderr, _ = os.Open(os.DevNull)
		err := cmd(context.Background(), []string{"--help"})
		os.Stderr = stderr
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s --help = %v, want flag.ErrHelp", name, err)
		}
	}
}

func TestDryRunClients(t *testing.T) {
	var logs bytes.Buffer
	cc := NewDryRunClientCreator(zerolog.New(&logs), DryRunPermissions(map[string]string{"alice": "write"}))
	ctx := context.Background()
	gh, err := cc.NewInstallationClient(42)
	if err != nil {
		t.Fatal(err)
	}
	c, resp, err := gh.Issues.CreateComment(ctx, "o", "r", 7, &github.IssueComment{Body: github.String("[AGENT] hello")})
	if err != nil || resp.StatusCode != http.StatusCreated || c.GetID() == 0 || c.GetBody() != "[AGENT] hello" {
		t.Fatalf("create comment = %+v, %v, %v", c, resp, err)
	}
	r, resp, err := gh.Reactions.CreateIssueReaction(ctx, "o", "r", 7, "eyes")
	if err != nil || resp.StatusCode != http.StatusCreated || r.GetContent() != "eyes" {
		t.Fatalf("reaction = %+v, %v", r, err)
	}
	perm, _, err := gh.Repositories.GetPermissionLevel(ctx, "o", "r", "alice")
	if err != nil || perm.GetPermission() != "write" {
		t.Fatalf("permission = %+v, %v", perm, err)
	}
	// A login no grant names may read, not onboard.
	perm, _, err = gh.Repositories.GetPermissionLevel(ctx, "o", "r", "mallory")
	if err != nil || perm.GetPermission() != DryRunDefaultPermission {
		t.Fatalf("permission of an ungranted login = %+v, %v; want %s", perm, err, DryRunDefaultPermission)
	}
	if _, _, err := gh.Issues.EditComment(ctx, "o", "r", c.GetID(), &github.IssueComment{Body: github.String("[AGENT] edited")}); err != nil {
		t.Fatal(err)
	}
	app, _ := cc.NewAppClient()
	tok, _, err := app.Apps.CreateInstallationToken(ctx, 42, nil)
	if err != nil || tok.GetToken() == "" {
		t.Fatalf("token = %+v, %v", tok, err)
	}
	ds, _, err := app.Apps.ListHookDeliveries(ctx, &github.ListCursorOptions{PerPage: 100})
	if err != nil || len(ds) != 0 {
		t.Fatalf("deliveries = %v, %v", ds, err)
	}
	out := logs.String()
	for _, want := range []string{
		`"method":"POST","url":"https://api.github.com/repos/o/r/issues/7/comments","body":{"body":"[AGENT] hello"}`,
		`"method":"POST","url":"https://api.github.com/repos/o/r/issues/7/reactions","body":{"content":"eyes"}`,
		`"method":"PATCH"`,
		`"method":"GET","url":"https://api.github.com/repos/o/r/collaborators/alice/permission"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run log lacks %s\nlog:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 7 {
		t.Errorf("dry-run log has %d lines, want one per call (7):\n%s", n, out)
	}
}

func FuzzCheckJSON(f *testing.F) {
	f.Add("application/json", []byte(`{"action":"opened"}`))
	f.Add("application/x-www-form-urlencoded", []byte(`payload=%7B%7D`))
	f.Add("text/plain", []byte(`{}`))
	f.Add("application/json; charset=utf-8", []byte(`not json`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		err := checkJSON(ct, body)
		if err == nil && !strings.Contains(ct, "form") && !json.Valid(body) {
			t.Fatalf("checkJSON(%q) accepted %q", ct, body)
		}
	})
}
