package server

import (
	"context"
	"encoding/json"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/internal/fakegithub"
)

var (
	formAction   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	formManifest = regexp.MustCompile(`name="manifest" value="([^"]+)"`)
)

// startSetup runs the manifest flow against gh in the background; the test
// then plays the browser and GitHub's web page.
func startSetup(t *testing.T, gh *fakegithub.Server, s *Setup) (base string, result func() (*SetupResult, error)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type outcome struct {
		res *SetupResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.Run(ctx, ln)
		done <- outcome{res, err}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("setup did not stop within 10s of cancel")
		}
	})
	return "http://" + ln.Addr().String(), func() (*SetupResult, error) {
		select {
		case o := <-done:
			done <- o
			return o.res, o.err
		case <-time.After(20 * time.Second):
			t.Fatal("setup did not finish")
			return nil, nil
		}
	}
}

func TestSetup(t *testing.T) {
	gh := fakegithub.New(t)
	manifest, err := os.ReadFile(filepath.Join("..", "deploy", "app-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "app")
	s := &Setup{Manifest: manifest, WebURL: "https://ghe.example.com", APIURL: gh.URL(), Org: "nvidia",
		WebhookURL: "https://adbot.example.com" + WebhookRoute, Dir: dir}
	base, result := startSetup(t, gh, s)

	// The page posts the manifest to the organization's new-App page.
	status, page := get(t, base+"/")
	if status != http.StatusOK {
		t.Fatalf("page: %d", status)
	}
	action, mf := formAction.FindStringSubmatch(page), formManifest.FindStringSubmatch(page)
	if action == nil || mf == nil {
		t.Fatalf("page has no manifest form:\n%s", page)
	}
	au, err := url.Parse(html.UnescapeString(action[1]))
	if err != nil {
		t.Fatal(err)
	}
	state := au.Query().Get("state")
	if got := au.Scheme + "://" + au.Host + au.Path; got != "https://ghe.example.com/organizations/nvidia/settings/apps/new" || state == "" {
		t.Errorf("form posts to %s (state %q)", au, state)
	}
	var sent, orig map[string]any
	if err := json.Unmarshal([]byte(html.UnescapeString(mf[1])), &sent); err != nil {
		t.Fatalf("manifest in the page: %v", err)
	}
	_ = json.Unmarshal(manifest, &orig)
	orig["redirect_url"] = base + "/callback"
	orig["hook_attributes"].(map[string]any)["url"] = "https://adbot.example.com" + WebhookRoute
	if diff := cmp.Diff(sent, orig); diff != "" {
		t.Errorf("manifest sent (-got +want):\n%s", diff)
	}

	// A callback with another state is refused and converts nothing.
	code, app := gh.IssueManifestCode(t, "adbot-test", "nvidia")
	if status, _ := get(t, base+"/callback?code="+code+"&state=forged"); status != http.StatusBadRequest {
		t.Errorf("forged state: %d, want 400", status)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written after a forged callback: %v", entries)
	}
	// GitHub sends the browser back with the code.
	status, done := get(t, base+"/callback?code="+code+"&state="+url.QueryEscape(state))
	if status != http.StatusOK || !strings.Contains(done, "adbot-test") {
		t.Errorf("callback: %d\n%s", status, done)
	}
	res, err := result()
	if err != nil {
		t.Fatal(err)
	}
	if res.AppID != app.ID || res.Slug != app.Slug || len(res.Files) != 3 {
		t.Errorf("result = %+v, want App %d %s and three files", res, app.ID, app.Slug)
	}
	for _, f := range res.Files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, st.Mode().Perm())
	}
	// adbot serve reads them: the configuration file and the environment file.
	cfg, err := LoadConfig(filepath.Join(dir, SetupConfigFile), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(true); err != nil {
		t.Errorf("written configuration: %v", err)
	}
	if cfg.GitHub.AppID != app.ID || cfg.GitHub.WebhookSecret != app.WebhookSecret || cfg.GitHub.PrivateKey != app.PEM || cfg.GitHub.V3APIURL != gh.URL() {
		t.Errorf("written configuration = %+v", cfg.GitHub)
	}
	envText, err := os.ReadFile(filepath.Join(dir, SetupEnvFile))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for l := range strings.Lines(string(envText)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	ecfg, err := LoadConfig("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ecfg.GitHub, cfg.GitHub); diff != "" {
		t.Errorf("environment file and configuration file differ (-env +yaml):\n%s", diff)
	}
	// The conversion went to the fake, checked by hand (it is not in the
	// description's subset), without credentials.
	var conversions int
	for _, r := range gh.Requests() {
		if r.Method == http.MethodPost && r.Path == "/app-manifests/"+code+"/conversions" {
			conversions++
			if r.Header.Get("Authorization") != "" {
				t.Error("the conversion carried credentials")
			}
		}
	}
	if conversions != 1 {
		t.Errorf("%d conversions, want 1", conversions)
	}
}

// TestSetupRefuses: existing files are kept unless --force, a bad manifest
// or webhook URL stops before anything is served, and a code GitHub does not
// know ends the flow with the reason.
func TestSetupRefuses(t *testing.T) {
	gh := fakegithub.New(t)
	manifest := []byte(`{"name":"adbot","hook_attributes":{"url":"https://x.example.com/api/github/hook"}}`)
	ln := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	existing := t.TempDir()
	if err := os.WriteFile(filepath.Join(existing, SetupKeyFile), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		s       Setup
		wantErr string
	}{
		{"existing files", Setup{Manifest: manifest, Dir: existing}, "pass --force"},
		{"manifest not JSON", Setup{Manifest: []byte("{"), Dir: t.TempDir()}, "app manifest"},
		{"manifest without a name", Setup{Manifest: []byte(`{}`), Dir: t.TempDir()}, "no name"},
		{"webhook URL", Setup{Manifest: manifest, Dir: t.TempDir(), WebhookURL: "ftp://x"}, "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.WebURL, tc.s.APIURL = "https://github.com", gh.URL()
			_, err := tc.s.Run(context.Background(), ln())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(existing, SetupKeyFile)); string(b) != "old" {
		t.Errorf("existing key replaced: %q", b)
	}

	s := &Setup{Manifest: manifest, WebURL: "https://github.com", APIURL: gh.URL(), Dir: t.TempDir()}
	base, result := startSetup(t, gh, s)
	_, page := get(t, base+"/")
	au, _ := url.Parse(html.UnescapeString(formAction.FindStringSubmatch(page)[1]))
	if au.Path != "/settings/apps/new" {
		t.Errorf("without --org the form posts to %s", au.Path)
	}
	status, _ := get(t, base+"/callback?code=unknown&state="+url.QueryEscape(au.Query().Get("state")))
	if status != http.StatusBadGateway {
		t.Errorf("unknown code: %d, want 502", status)
	}
	if _, err := result(); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown code: err %v, want GitHub's 404", err)
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 0 {
		t.Errorf("files written for an unknown code: %v", entries)
	}
}

func FuzzPrepareManifest(f *testing.F) {
	f.Add([]byte(`{"name":"adbot","hook_attributes":{"url":"https://x/y"}}`), "https://a.example.com/hook")
	f.Add([]byte(`{"name":1}`), "")
	f.Add([]byte(`[]`), "")
	f.Fuzz(func(t *testing.T, manifest []byte, hook string) {
		s := &Setup{Manifest: manifest, WebhookURL: hook}
		out, err := s.prepareManifest("http://127.0.0.1:1/callback")
		if err != nil {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("prepared manifest is not JSON: %v", err)
		}
		if m["redirect_url"] != "http://127.0.0.1:1/callback" {
			t.Fatalf("redirect_url = %v", m["redirect_url"])
		}
	})
}
