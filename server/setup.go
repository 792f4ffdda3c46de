package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"gopkg.in/yaml.v3"
)

// DefaultGitHubWebURL is where people create Apps (GITHUB_WEB_URL for GitHub Enterprise).
const DefaultGitHubWebURL = "https://github.com"

// Names of the files adbot setup writes, each mode 0600 in a 0700 folder.
const (
	SetupConfigFile = "adbot.yaml"          // for adbot serve --config
	SetupEnvFile    = "adbot.env"           // the same as environment variables (systemd, fly secrets)
	SetupKeyFile    = "app.private-key.pem" // the App's private key
)

// Setup is the GitHub App manifest flow: a local page posts the manifest to
// GitHub, GitHub sends the browser back with a temporary code, and the code
// is converted (POST /app-manifests/{code}/conversions) into the App's id,
// private key and webhook secret, which are written to Dir.
type Setup struct {
	// Manifest is the App manifest (deploy/app-manifest.json).
	Manifest []byte
	// WebURL is GitHub's web address, APIURL its REST API.
	WebURL, APIURL string
	// Org creates the App under an organization ("" for the person's account).
	Org string
	// WebhookURL, when set, replaces the manifest's hook_attributes.url.
	WebhookURL string
	// Name, when set, replaces the manifest's name (App names are unique on GitHub).
	Name string
	// Dir receives the files; Force lets them replace existing ones.
	Dir   string
	Force bool
	// HTTP is the client for the conversion (nil: a default with a timeout).
	HTTP *http.Client
	// Out receives the instructions for the person.
	Out io.Writer
}

// SetupResult is what the flow made.
type SetupResult struct {
	AppID   int64
	Slug    string
	HTMLURL string
	// Files are the paths written.
	Files []string
}

// prepareManifest returns the manifest with the redirect to callback and
// the overrides applied. Unknown fields are kept as they are.
func (s *Setup) prepareManifest(callback string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(s.Manifest, &m); err != nil {
		return nil, fmt.Errorf("app manifest: %w", err)
	}
	if m == nil {
		return nil, errors.New("app manifest: not a JSON object")
	}
	if name, _ := m["name"].(string); name == "" && s.Name == "" {
		return nil, errors.New("app manifest: no name")
	}
	if s.Name != "" {
		m["name"] = s.Name
	}
	m["redirect_url"] = callback
	if s.WebhookURL != "" {
		u, err := url.Parse(s.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("webhook URL %q is not an http(s) URL", s.WebhookURL)
		}
		hook, _ := m["hook_attributes"].(map[string]any)
		if hook == nil {
			hook = map[string]any{"active": true}
		}
		hook["url"] = s.WebhookURL
		m["hook_attributes"] = hook
	}
	return json.Marshal(m)
}

// newAppURL is the page of GitHub that takes a manifest.
func (s *Setup) newAppURL(state string) string {
	base := strings.TrimSuffix(s.WebURL, "/")
	p := "/settings/apps/new"
	if s.Org != "" {
		p = "/organizations/" + url.PathEscape(s.Org) + "/settings/apps/new"
	}
	return base + p + "?state=" + url.QueryEscape(state)
}

var setupPage = template.Must(template.New("setup").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>adbot setup</title></head>
<body>
<h1>Create the adbot GitHub App</h1>
<p>This page sends adbot's App manifest to {{.Where}}. GitHub shows you the App to create; after you confirm, it sends you back here and adbot writes the App's credentials to {{.Dir}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<button type="submit">Create the App on GitHub</button>
</form>
</body></html>
`))

var setupDone = template.Must(template.New("done").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>adbot setup</title></head>
<body>
{{if .Err}}<h1>adbot setup failed</h1><p>{{.Err}}</p><p>Run adbot setup again.</p>
{{else}}<h1>The App {{.Slug}} exists</h1><p>Its credentials are in {{.Dir}}. Install it on the repositories adbot should serve: <a href="{{.HTMLURL}}/installations/new">{{.HTMLURL}}/installations/new</a>. You can close this page.</p>{{end}}
</body></html>
`))

// Run serves the flow's page on ln until the App is made and its files
// written (or ctx ends, or the conversion fails), then stops serving.
func (s *Setup) Run(ctx context.Context, ln net.Listener) (*SetupResult, error) {
	if err := s.checkDir(); err != nil {
		_ = ln.Close()
		return nil, err
	}
	base := "http://" + ln.Addr().String()
	manifest, err := s.prepareManifest(base + "/callback")
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	state := randomHex(16)
	type outcome struct {
		res *SetupResult
		err error
	}
	done := make(chan outcome, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = setupPage.Execute(w, map[string]string{"Where": s.WebURL, "Dir": s.Dir, "Action": s.newAppURL(state), "Manifest": string(manifest)})
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			http.Error(w, "state does not match this adbot setup: start from the page adbot setup printed", http.StatusBadRequest)
			return
		}
		code := q.Get("code")
		if code == "" || strings.ContainsAny(code, "/?#") {
			http.Error(w, "no usable code from GitHub", http.StatusBadRequest)
			return
		}
		res, err := s.convert(r.Context(), code)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		view := map[string]any{"Dir": s.Dir}
		if err != nil {
			view["Err"] = err.Error()
			w.WriteHeader(http.StatusBadGateway)
		} else {
			view["Slug"], view["HTMLURL"] = res.Slug, res.HTMLURL
		}
		_ = setupDone.Execute(w, view)
		select {
		case done <- outcome{res, err}:
		default:
		}
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: DefaultReadHeaderTimeout}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(s.out(), "Open %s/ in a browser on this machine to create the App on %s.\nWaiting for GitHub to send the browser back (Ctrl-C to give up)...\n", base, s.WebURL)

	var out outcome
	var serveErr error
	select {
	case out = <-done:
	case <-ctx.Done():
		out.err = fmt.Errorf("setup: %w", ctx.Err())
	case serveErr = <-served:
		served = nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx) // lets the last page reach the browser
	if served != nil {
		serveErr = <-served
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && out.err == nil {
		out.err = fmt.Errorf("setup page: %w", serveErr)
	}
	return out.res, out.err
}

func (s *Setup) out() io.Writer {
	if s.Out == nil {
		return io.Discard
	}
	return s.Out
}

// checkDir makes sure Dir can take the files: created 0700 if absent, and
// none of the files there unless Force.
func (s *Setup) checkDir() error {
	if s.Dir == "" {
		return errors.New("setup: no folder for the App's files")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("setup folder: %w", err)
	}
	if s.Force {
		return nil
	}
	for _, f := range []string{SetupConfigFile, SetupEnvFile, SetupKeyFile} {
		p := filepath.Join(s.Dir, f)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("setup: %s exists: move it away or pass --force (an App's key cannot be downloaded twice)", p)
		}
	}
	return nil
}

// convert trades the code for the App's credentials and writes them.
func (s *Setup) convert(ctx context.Context, code string) (*SetupResult, error) {
	hc := s.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultGitHubTimeout}
	}
	gh := github.NewClient(hc)
	api := s.APIURL
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	u, err := url.Parse(api)
	if err != nil {
		return nil, fmt.Errorf("GitHub API URL %q: %w", s.APIURL, err)
	}
	gh.BaseURL = u
	cfg, _, err := gh.Apps.CompleteAppManifest(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("convert the manifest code: %w", err)
	}
	if cfg.GetID() <= 0 || cfg.GetPEM() == "" {
		return nil, fmt.Errorf("GitHub's conversion answer has no App id or key (id %d)", cfg.GetID())
	}
	if err := checkPrivateKey([]byte(cfg.GetPEM())); err != nil {
		return nil, fmt.Errorf("the App's private key from GitHub: %w", err)
	}
	secret := cfg.GetWebhookSecret()
	if secret == "" {
		return nil, errors.New("GitHub returned no webhook secret: the manifest needs hook_attributes with a url")
	}
	res := &SetupResult{AppID: cfg.GetID(), Slug: cfg.GetSlug(), HTMLURL: cfg.GetHTMLURL()}
	keyPath, err := filepath.Abs(filepath.Join(s.Dir, SetupKeyFile))
	if err != nil {
		return nil, fmt.Errorf("key file path: %w", err)
	}
	gc := map[string]any{"app_id": res.AppID, "private_key_file": keyPath, "webhook_secret": secret}
	if strings.TrimSuffix(s.APIURL, "/") != strings.TrimSuffix(DefaultV3APIURL, "/") {
		gc["v3_api_url"] = api
	}
	yml, err := yaml.Marshal(map[string]any{"github": gc})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", SetupConfigFile, err)
	}
	env := fmt.Sprintf("# adbot serve's App credentials, from adbot setup (App %s, id %d).\nGITHUB_APP_ID=%d\nGITHUB_APP_PRIVATE_KEY_FILE=%s\nGITHUB_WEBHOOK_SECRET=%s\n",
		res.Slug, res.AppID, res.AppID, keyPath, secret)
	if _, ok := gc["v3_api_url"]; ok {
		env += "GITHUB_V3_API_URL=" + api + "\n"
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{SetupKeyFile, []byte(cfg.GetPEM())}, {SetupConfigFile, yml}, {SetupEnvFile, []byte(env)}} {
		p := filepath.Join(s.Dir, f.name)
		if err := writeSecretFile(p, f.data, s.Force); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, p)
	}
	return res, nil
}

// writeSecretFile writes data to p with mode 0600, through a temporary file
// renamed into place, refusing to replace p unless force.
func writeSecretFile(p string, data []byte, force bool) error {
	if !force {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: not replaced", p)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// SetupCommand runs `adbot setup`.
func SetupCommand(ctx context.Context, args []string) error {
	fs := newFlagSet("setup", "adbot setup [flags]\n\nCreates the GitHub App from its manifest: serves a page on loopback that posts the manifest\nto GitHub (GITHUB_WEB_URL for GitHub Enterprise, default https://github.com), takes the code\nGitHub sends back, converts it through the API (GITHUB_V3_API_URL) and writes the App id,\nprivate key and webhook secret to --dir: adbot.yaml for adbot serve --config, adbot.env for\nsystemd or fly secrets, app.private-key.pem; each mode 0600.")
	manifest := fs.String("manifest", filepath.Join("deploy", "app-manifest.json"), "App manifest `file`")
	org := fs.String("org", "", "create the App under this `organization` (default: your account)")
	hook := fs.String("webhook-url", "", "public `URL` of adbot serve's webhook, e.g. https://adbot.example.com"+WebhookRoute+" (default: the manifest's)")
	name := fs.String("name", "", "App `name` (default: the manifest's; names are unique on GitHub)")
	dir := fs.String("dir", filepath.Join(DefaultDataDir, "github-app"), "`folder` for the App's files")
	listen := fs.String("listen", "127.0.0.1:0", "`host:port` of the local page (keep it on loopback)")
	force := fs.Bool("force", false, "replace files already in --dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	b, err := os.ReadFile(*manifest)
	if err != nil {
		return fmt.Errorf("read app manifest: %w", err)
	}
	s := &Setup{Manifest: b, WebURL: cmpOr(os.Getenv("GITHUB_WEB_URL"), DefaultGitHubWebURL), APIURL: cmpOr(os.Getenv("GITHUB_V3_API_URL"), DefaultV3APIURL),
		Org: *org, WebhookURL: *hook, Name: *name, Dir: *dir, Force: *force, Out: os.Stdout}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	res, err := s.Run(ctx, ln)
	if err != nil {
		return err
	}
	fmt.Printf("\nApp %s (id %s) created: %s\nWrote %s\n\nNext:\n  install it on the repositories to serve: %s/installations/new\n  run the server:  adbot serve --config %s\n  (systemd: EnvironmentFile=%s; fly: see README.md, \"Deploy the server\")\n",
		res.Slug, strconv.FormatInt(res.AppID, 10), res.HTMLURL, strings.Join(res.Files, ", "), res.HTMLURL,
		filepath.Join(*dir, SetupConfigFile), filepath.Join(*dir, SetupEnvFile))
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
