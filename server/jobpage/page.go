// Package jobpage serves adbot's read-only live job pages: /jobs lists every
// job with its phase and progress, /jobs/<key> shows one job's phase
// checklist, the agent's turns, pytest and end-to-end output as the runner
// streams them, and links to the issue, the pull request and the logs of
// finished cycles. Pages are plain html/template; a small script follows a
// server-sent event stream that carries fragments rendered (and escaped) on
// the server, so nothing the page shows is built from text in the browser.
//
// The live output comes from core NATS (runners.LogSubjectPrefix + <job>);
// the page keeps a bounded tail per job so a page opened mid-cycle shows
// recent output. Job state comes from a watch of the job bucket.
//
// Who may look is Config's choice: clients on this host only (the default),
// GitHub logins from an allowlist signed in with OAuth, or nobody.
package jobpage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// Routes.
const (
	// Route is the job list; a job's page is Route + "/" + its key.
	Route = "/jobs"
	// assetPrefix serves the script and the style sheet. No job key starts
	// with "-": GitHub logins cannot.
	assetPrefix = Route + "/-/"
	authPrefix  = Route + "/-/auth/"
	loginRoute  = authPrefix + "login"
	// CallbackRoute is where GitHub sends a browser back after sign-in.
	CallbackRoute = authPrefix + "callback"
)

// Tuning values of the pages.
const (
	// DefaultKeepAlive is how often an idle event stream sends a comment, so
	// proxies do not close it.
	DefaultKeepAlive = 15 * time.Second
	// DefaultLogListTimeout bounds the listing of finished cycles' logs.
	DefaultLogListTimeout = 5 * time.Second
	// DefaultMaxLogBytes bounds one log file served from the object store.
	DefaultMaxLogBytes = 64 << 20
)

//go:embed assets
var assets embed.FS

// Deps are what the page reads.
type Deps struct {
	// Conn carries the runners' live output.
	Conn *nats.Conn
	// Jobs is the job bucket (bus.JobBucket); Logs the log store (bus.LogStore).
	Jobs jetstream.KeyValue
	Logs jetstream.ObjectStore
	// WebURL is GitHub's web address (https://github.com, or an Enterprise
	// host) for links and sign-in; APIURL its REST API base.
	WebURL string
	APIURL string
	// HTTP makes the sign-in's requests to GitHub (a client with a timeout
	// when nil).
	HTTP *http.Client
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Page is the job pages: an HTTP handler, and Run, which feeds it.
type Page struct {
	cfg     Config
	nc      *nats.Conn
	jobs    jetstream.KeyValue
	logs    jetstream.ObjectStore
	webURL  string
	now     func() time.Time
	hub     *hub
	tmpl    *template.Template
	handler http.Handler
}

// WebURL derives GitHub's web address from its REST API base:
// api.github.com is github.com, <host>/api/v3 is <host>, and any other
// address (a test server) serves both.
func WebURL(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return "https://github.com"
	}
	if u.Host == "api.github.com" {
		return u.Scheme + "://github.com"
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v3")
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/")
}

// New builds the pages. With Mode off it returns nil and no error: there is
// nothing to serve.
func New(cfg Config, d Deps) (*Page, error) {
	cfg = cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("job page: %w", err)
	}
	if cfg.Mode == ModeOff {
		return nil, nil
	}
	if d.Conn == nil || d.Jobs == nil {
		return nil, errors.New("job page: a NATS connection and the job bucket are required")
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	p := &Page{
		cfg: cfg, nc: d.Conn, jobs: d.Jobs, logs: d.Logs, webURL: strings.TrimSuffix(d.WebURL, "/"),
		now: d.Now, hub: newHub(), tmpl: tmpl,
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.webURL == "" {
		p.webURL = "https://github.com"
	}
	mux := http.NewServeMux()
	var gate func(http.Handler) http.Handler
	switch cfg.Mode {
	case ModeLoopback:
		gate = loopbackOnly
	case ModeOAuth:
		s, err := newSigner()
		if err != nil {
			return nil, fmt.Errorf("job page: %w", err)
		}
		hc := d.HTTP
		if hc == nil {
			hc = &http.Client{Timeout: DefaultOAuthTimeout}
		}
		api := d.APIURL
		if !strings.HasSuffix(api, "/") {
			api += "/"
		}
		g := &oauthGate{
			cfg: cfg, signer: s, apiURL: api, http: hc,
			oauth: &oauth2.Config{
				ClientID: cfg.OAuthClientID, ClientSecret: cfg.OAuthClientSecret,
				Endpoint: oauth2.Endpoint{
					AuthURL: p.webURL + "/login/oauth/authorize", TokenURL: p.webURL + "/login/oauth/access_token",
					AuthStyle: oauth2.AuthStyleInParams,
				},
			},
		}
		mux.HandleFunc("GET "+loginRoute, g.login)
		mux.HandleFunc("GET "+CallbackRoute, g.callback)
		gate = g.wrap
	}
	page := http.NewServeMux()
	page.HandleFunc("GET "+Route, p.list)
	page.HandleFunc("GET "+Route+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Route, http.StatusMovedPermanently)
	})
	page.HandleFunc("GET "+assetPrefix+"events", p.listEvents)
	page.HandleFunc("GET "+Route+"/{key}", p.job)
	page.HandleFunc("GET "+Route+"/{key}/events", p.jobEvents)
	page.HandleFunc("GET "+Route+"/{key}/logs/{cycle}/{file}", p.logFile)
	mux.Handle("GET "+assetPrefix+"live.js", asset("assets/live.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET "+assetPrefix+"style.css", asset("assets/style.css", "text/css; charset=utf-8"))
	mux.Handle("/", gate(page))
	var h http.Handler = mux
	if cfg.Mode == ModeLoopback {
		h = loopbackOnly(mux) // the assets too
	}
	p.handler = headers(h)
	return p, nil
}

// Handler serves Route and everything under it.
func (p *Page) Handler() http.Handler { return p.handler }

// headers sets what every answer carries: no framing, no sniffing, and a
// content policy that runs only our own script and style.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func asset(name, contentType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b, err := assets.ReadFile(name)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(b)
	})
}

// list serves the job list.
func (p *Page) list(w http.ResponseWriter, r *http.Request) {
	jobs, synced := p.hub.list()
	v := listView{Synced: synced, Events: assetPrefix + "events"}
	for _, j := range jobs {
		v.Jobs = append(v.Jobs, p.rowOf(j))
	}
	p.render(w, r, http.StatusOK, "list.html", v)
}

// job serves one job's page.
func (p *Page) job(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	j, gen, items := p.hub.job(key)
	if j == nil {
		_, synced := p.hub.list()
		msg := "No job " + key + "."
		if !synced {
			msg += " The job list is still being read; try again in a moment."
		}
		p.render(w, r, http.StatusNotFound, "missing.html", msg)
		return
	}
	v := p.jobViewOf(j)
	v.Gen = gen
	v.Panes = panesOf(items)
	if n := len(items); n > 0 {
		v.Last = items[n-1].N
	}
	v.Events = Route + "/" + url.PathEscape(key) + "/events?" + url.Values{"gen": {gen}, "after": {strconv.FormatUint(v.Last, 10)}}.Encode()
	v.Logs, v.LogsErr = p.finishedLogs(r.Context(), key)
	p.render(w, r, http.StatusOK, "job.html", v)
}

func (p *Page) render(w http.ResponseWriter, r *http.Request, status int, name string, v any) {
	var b strings.Builder
	if err := p.tmpl.ExecuteTemplate(&b, name, v); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Str("template", name).Msg("job page: render")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, b.String())
}

// logFile serves one finished cycle's log file from the log store as plain text.
func (p *Page) logFile(w http.ResponseWriter, r *http.Request) {
	key, cycle, file := r.PathValue("key"), r.PathValue("cycle"), r.PathValue("file")
	n, err := strconv.Atoi(cycle)
	if err != nil || n < 1 || file == "" || strings.ContainsAny(file, "/\\") || file == "." || file == ".." || p.logs == nil {
		http.Error(w, "no such log", http.StatusNotFound)
		return
	}
	name := LogObjectName(key, n, file)
	res, err := p.logs.Get(r.Context(), name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		http.Error(w, "no such log", http.StatusNotFound)
		return
	}
	if err != nil {
		zerolog.Ctx(r.Context()).Warn().Err(err).Str("log", name).Msg("job page: read log")
		http.Error(w, "the log could not be read", http.StatusBadGateway)
		return
	}
	defer res.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", "inline")
	_, _ = io.Copy(w, io.LimitReader(res, DefaultMaxLogBytes))
}

// LogObjectName is the log store's name for a finished cycle's log file, as
// the runner uploads it.
func LogObjectName(key string, cycle int, file string) string {
	return key + "/cycle-" + strconv.Itoa(cycle) + "/" + file
}

// finishedLogs lists the job's files in the log store, newest cycle first.
func (p *Page) finishedLogs(ctx context.Context, key string) ([]cycleLogs, string) {
	if p.logs == nil {
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultLogListTimeout)
	defer cancel()
	infos, err := p.logs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, ""
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("job page: list logs")
		return nil, "The log store could not be listed."
	}
	byCycle := map[int][]logLink{}
	for _, in := range infos {
		rest, ok := strings.CutPrefix(in.Name, key+"/cycle-")
		if !ok || in.Deleted {
			continue
		}
		num, file, ok := strings.Cut(rest, "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 || file == "" || strings.Contains(file, "/") {
			continue
		}
		byCycle[n] = append(byCycle[n], logLink{
			Name: file, Size: byteSize(in.Size),
			URL: Route + "/" + url.PathEscape(key) + "/logs/" + strconv.Itoa(n) + "/" + url.PathEscape(file),
		})
	}
	var out []cycleLogs
	for n, files := range byCycle {
		out = append(out, cycleLogs{Cycle: n, Files: files})
	}
	sortLogs(out)
	return out, ""
}
