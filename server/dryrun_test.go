package server

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/internal/golden"
)

// TestDryRunReadable: with an output, each call is a block a person reads:
// method and path, the fields, then the comment body as text, not escaped JSON.
func TestDryRunReadable(t *testing.T) {
	var out, logs bytes.Buffer
	cc := NewDryRunClientCreator(zerolog.New(&logs).Level(zerolog.InfoLevel), DryRunOutput(&out))
	gh, err := cc.NewInstallationClient(42)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := "[AGENT] **Onboarding `Qwen/Qwen3-0.6B`**\n\n| Model | `Qwen/Qwen3-0.6B` |\n| Status | \"queued\" |\n"
	if _, _, err := gh.Issues.CreateComment(ctx, "o", "r", 7, &github.IssueComment{Body: github.String(body)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Reactions.CreateIssueReaction(ctx, "o", "r", 7, "eyes"); err != nil {
		t.Fatal(err)
	}
	pr, _, err := gh.PullRequests.Create(ctx, "o", "r", &github.NewPullRequest{Title: github.String("[AutoDeploy] Onboard Qwen/Qwen3-0.6B"), Head: github.String("adbot/x"), Base: github.String("main"), Body: github.String("Closes #7")})
	if err != nil {
		t.Fatal(err)
	}
	if pr.GetNumber() != FirstDryRunNumber {
		t.Errorf("first pull request number = %d, want %d", pr.GetNumber(), FirstDryRunNumber)
	}
	if _, _, err := gh.Repositories.GetPermissionLevel(ctx, "o", "r", "alice"); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "dryrun_readable.golden", out.Bytes())
	if logs.Len() != 0 {
		t.Errorf("with an output, the calls are logged at debug level only; info log:\n%s", logs.String())
	}
}

func TestRenderCall(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body, want string
	}{
		{"no body", "GET", "/repos/o/r", "", "--- GitHub GET /repos/o/r (dry run, not sent)\n"},
		{"fields sorted, text last", "PATCH", "/repos/o/r/issues/comments/5", `{"body":"a\nb","z":1,"a":true}`,
			"--- GitHub PATCH /repos/o/r/issues/comments/5 (dry run, not sent)\na: true\nz: 1\nbody:\n    a\n    b\n"},
		{"a list", "POST", "/x", `[1, 2]`, "--- GitHub POST /x (dry run, not sent)\n[1,2]\n"},
		{"not JSON", "POST", "/x", `abc`, "--- GitHub POST /x (dry run, not sent)\n(3 bytes, not JSON)\n"},
		{"nested", "POST", "/x", `{"permissions":{"contents":"write"}}`, "--- GitHub POST /x (dry run, not sent)\npermissions: {\"contents\":\"write\"}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(RenderCall(tc.method, tc.path, []byte(tc.body)), tc.want); diff != "" {
				t.Errorf("RenderCall (-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzRenderCall(f *testing.F) {
	f.Add([]byte(`{"body":"x\ny"}`))
	f.Add([]byte(`[1]`))
	f.Add([]byte(`{"body":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out := RenderCall("POST", "/p", body)
		if !strings.HasPrefix(out, "--- GitHub POST /p (dry run, not sent)\n") || !strings.HasSuffix(out, "\n") {
			t.Fatalf("RenderCall(%q) = %q", body, out)
		}
	})
}

func TestParseGrants(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", map[string]string{}, ""},
		{"maint=write", map[string]string{"maint": "write"}, ""},
		{" maint = Admin , bob=read", map[string]string{"maint": "admin", "bob": "read"}, ""},
		{"maint", nil, `grant "maint" is not login=permission`},
		{"=write", nil, "is not login=permission"},
		{"maint=owner", nil, `permission "owner" is not admin`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseGrants(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("grants (-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzParseGrants(f *testing.F) {
	f.Add("maint=write,bob=read")
	f.Add("=")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGrants(s)
		if err != nil {
			return
		}
		for login, perm := range g {
			if login == "" || strings.ContainsAny(login, ",=") {
				t.Fatalf("ParseGrants(%q) gave login %q", s, login)
			}
			if _, err := ParseGrants(login + "=" + perm); err != nil {
				t.Fatalf("ParseGrants(%q) gave %s=%s, which does not parse again: %v", s, login, perm, err)
			}
		}
	})
}

// TestExamples: every payload in examples/ is accepted by a dry-run server
// when signed with its secret, and the one that asks for nothing is logged
// at info level with the reason.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	if err != nil || len(files) < 5 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	var logs syncBuffer
	cfg := testConfig(t, "http://127.0.0.1:1")
	cfg.GitHub.AppID, cfg.GitHub.PrivateKey = 0, ""
	log := zerolog.New(&logs).Level(zerolog.InfoLevel)
	_, base := startServer(t, cfg, nil, WithLogger(log),
		WithClientCreator(NewDryRunClientCreator(log, DryRunOutput(&bytes.Buffer{}), DryRunPermissions(map[string]string{"maint": "write", "reviewer": "write"})), true))
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			event := strings.Split(name, ".")[1]
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req, err := NewDeliveryRequest(context.Background(), base+WebhookRoute, cfg.GitHub.WebhookSecret, event, NewDeliveryID(), body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %s, want 200", name, resp.Status)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), `"ignored":`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, `"ignored":`) && strings.Contains(l, `"level":"info"`) {
			line = l
		}
	}
	if line == "" {
		t.Errorf("no info-level line says why an example was ignored; log:\n%s", logs.String())
	}
}
