package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"
	"github.com/shurcooL/githubv4"
	"golang.org/x/oauth2"
)

// dryRunBaseURL is the API base the dry-run clients pretend to call.
const dryRunBaseURL = "https://api.github.com/"

// NewDryRunClientCreator returns GitHub clients that send nothing: each call
// they would make is logged (method, URL, JSON body) on log, printed as a
// readable block where DryRunOutput says, and answered with a plausible
// canned response (201 with a fresh id for a create, the patched object for
// an edit, the granted permission for a permission check, an empty list for
// a list). adbot dev uses it when no App credentials are configured.
func NewDryRunClientCreator(log zerolog.Logger, opts ...DryRunOption) githubapp.ClientCreator {
	t := &dryRunTransport{log: log}
	for _, o := range opts {
		o(t)
	}
	return &dryRunClientCreator{rt: t}
}

// DryRunOption adjusts the dry-run clients.
type DryRunOption func(*dryRunTransport)

// DryRunOutput prints each call as a readable block on w (method and path,
// then the fields, the comment body as text); the log line then goes to
// debug level.
func DryRunOutput(w io.Writer) DryRunOption { return func(t *dryRunTransport) { t.out = w } }

// DryRunPermissions sets the repository permission the permission check
// answers for each login ("admin", "maintain", "write", "triage", "read");
// a login not listed has "read", which may not start an onboarding.
func DryRunPermissions(p map[string]string) DryRunOption {
	return func(t *dryRunTransport) { t.perms = p }
}

// DryRunDefaultPermission is what a login that no grant names has in a dry run.
const DryRunDefaultPermission = "read"

// ParseGrants parses "login=permission" pairs, comma-separated, as
// `adbot dev --grant` takes them.
func ParseGrants(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		login, perm, ok := strings.Cut(strings.TrimSpace(pair), "=")
		login, perm = strings.TrimSpace(login), strings.ToLower(strings.TrimSpace(perm))
		if !ok || login == "" {
			return nil, fmt.Errorf("grant %q is not login=permission", pair)
		}
		switch perm {
		case "admin", "maintain", "write", "triage", "read", "none":
		default:
			return nil, fmt.Errorf("grant %q: permission %q is not admin, maintain, write, triage, read or none", pair, perm)
		}
		out[login] = perm
	}
	return out, nil
}

type dryRunClientCreator struct{ rt *dryRunTransport }

var _ githubapp.ClientCreator = (*dryRunClientCreator)(nil)

func (d *dryRunClientCreator) client(who string) *github.Client {
	c := github.NewClient(&http.Client{Transport: d.rt, Timeout: DefaultGitHubTimeout})
	c.BaseURL, _ = url.Parse(dryRunBaseURL)
	c.UserAgent = DefaultUserAgent + " (dry run; " + who + ")"
	return c
}

func (d *dryRunClientCreator) v4() *githubv4.Client {
	return githubv4.NewEnterpriseClient(dryRunBaseURL+"graphql", &http.Client{Transport: d.rt, Timeout: DefaultGitHubTimeout})
}

func (d *dryRunClientCreator) NewAppClient() (*github.Client, error) {
	return d.client("application"), nil
}
func (d *dryRunClientCreator) NewAppV4Client() (*githubv4.Client, error) { return d.v4(), nil }
func (d *dryRunClientCreator) NewInstallationClient(id int64) (*github.Client, error) {
	return d.client("installation " + strconv.FormatInt(id, 10)), nil
}
func (d *dryRunClientCreator) NewInstallationV4Client(int64) (*githubv4.Client, error) {
	return d.v4(), nil
}
func (d *dryRunClientCreator) NewTokenSourceClient(oauth2.TokenSource) (*github.Client, error) {
	return d.client("token"), nil
}
func (d *dryRunClientCreator) NewTokenSourceV4Client(oauth2.TokenSource) (*githubv4.Client, error) {
	return d.v4(), nil
}
func (d *dryRunClientCreator) NewTokenClient(string) (*github.Client, error) {
	return d.client("token"), nil
}
func (d *dryRunClientCreator) NewTokenV4Client(string) (*githubv4.Client, error) {
	return d.v4(), nil
}

// dryRunTransport logs each request and answers it without sending it.
type dryRunTransport struct {
	log    zerolog.Logger
	nextID atomic.Int64
	// out, when set, receives each call as a readable block.
	out   io.Writer
	outMu sync.Mutex
	// perms answers permission checks by login (see DryRunPermissions).
	perms map[string]string
	// numbers is the last issue or pull request number made up per repository.
	numMu   sync.Mutex
	numbers map[string]int
}

// FirstDryRunNumber is the number of the first pull request (or issue) a
// dry run makes up in a repository; the next ones count up from it, so that
// examples/ can name pull request 100.
const FirstDryRunNumber = 100

func (t *dryRunTransport) number(repo string) int {
	t.numMu.Lock()
	defer t.numMu.Unlock()
	if t.numbers == nil {
		t.numbers = map[string]int{}
	}
	n, ok := t.numbers[repo]
	if !ok {
		n = FirstDryRunNumber - 1
	}
	n++
	t.numbers[repo] = n
	return n
}

func (t *dryRunTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("dry run: read request body: %w", err)
		}
		body = b
	}
	ev := t.log.Info()
	if t.out != nil {
		ev = t.log.Debug()
		t.outMu.Lock()
		_, _ = io.WriteString(t.out, RenderCall(r.Method, r.URL.Path, body))
		t.outMu.Unlock()
	}
	ev = ev.Str(LogKeyMethod, r.Method).Str(LogKeyURL, r.URL.String())
	var compact bytes.Buffer
	if len(bytes.TrimSpace(body)) > 0 && json.Compact(&compact, body) == nil {
		ev = ev.RawJSON("body", compact.Bytes())
	} else if len(body) > 0 {
		ev = ev.Int("body_bytes", len(body))
	}
	ev.Msg("github call (dry run, not sent)")
	status, out := t.respond(r.Method, r.URL.Path, body)
	h := http.Header{}
	cannedHeaders(h)
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(out)),
		ContentLength: int64(len(out)),
		Request:       r,
	}, nil
}

func (t *dryRunTransport) respond(method, p string, body []byte) (int, []byte) {
	status, resp := t.answer(method, p, body)
	var out []byte
	if resp != nil {
		out, _ = json.Marshal(resp)
	}
	return status, out
}

func cannedHeaders(h http.Header) {
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
}

// RenderCall writes one GitHub call for a person to read: a header line
// with the method and path, then, for a JSON object body, its fields one a
// line (sorted; strings as they are) with the text fields that hold
// Markdown (body, and a GraphQL query) last, as text indented under their
// name. Other bodies are shown compact.
func RenderCall(method, p string, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- GitHub %s %s (dry run, not sent)\n", method, p)
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return b.String()
	}
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			fmt.Fprintf(&b, "%s\n", compact.Bytes())
		} else {
			fmt.Fprintf(&b, "(%d bytes, not JSON)\n", len(body))
		}
		return b.String()
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var texts []string
	for _, k := range keys {
		v := obj[k]
		if str, ok := v.(string); ok && (k == "body" || k == "query" || strings.Contains(str, "\n")) {
			texts = append(texts, k)
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", k, scalar(v))
	}
	for _, k := range texts {
		fmt.Fprintf(&b, "%s:\n", k)
		for line := range strings.Lines(obj[k].(string)) {
			if line = strings.TrimRight(line, "\r\n"); line == "" {
				b.WriteString("\n")
			} else {
				fmt.Fprintf(&b, "    %s\n", line)
			}
		}
	}
	return b.String()
}

// scalar shows a JSON value on one line: a string as it is, anything else as compact JSON.
func scalar(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	out, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(out)
}

// CannedGitHub serves the dry-run clients' canned answers over HTTP, logging
// nothing: a loopback stand-in for GitHub in benchmarks and demos. It checks
// nothing either; tests use internal/fakegithub.
func CannedGitHub() http.Handler {
	t := &dryRunTransport{log: zerolog.Nop()}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status, out := t.respond(r.Method, r.URL.Path, body)
		cannedHeaders(w.Header())
		w.WriteHeader(status)
		_, _ = w.Write(out)
	})
}

// answer makes up a plausible response for a request.
func (t *dryRunTransport) answer(method, p string, body []byte) (int, any) {
	p = "/" + strings.Trim(strings.TrimPrefix(p, "/api/v3"), "/")
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	id := 1000 + t.nextID.Add(1)
	obj := map[string]any{}
	if len(body) > 0 {
		_ = json.Unmarshal(body, &obj)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	switch method {
	case http.MethodGet:
		switch {
		case p == "/app":
			return http.StatusOK, map[string]any{"id": 1, "slug": "adbot", "name": "adbot", "owner": map[string]any{"login": "adbot"}}
		case len(parts) == 6 && parts[0] == "repos" && parts[3] == "collaborators" && parts[5] == "permission":
			perm := DryRunDefaultPermission
			if p, ok := t.perms[parts[4]]; ok {
				perm = p
			}
			return http.StatusOK, map[string]any{"permission": perm, "role_name": perm, "user": map[string]any{"login": parts[4]}}
		case len(parts) == 3 && parts[0] == "repos":
			return http.StatusOK, map[string]any{"id": id, "name": parts[2], "full_name": parts[1] + "/" + parts[2],
				"owner": map[string]any{"login": parts[1]}, "default_branch": "main", "private": false}
		case strings.HasSuffix(p, "s") || strings.HasSuffix(p, "/deliveries"):
			return http.StatusOK, []any{}
		default:
			return http.StatusOK, map[string]any{"id": id}
		}
	case http.MethodPost:
		switch {
		case len(parts) == 4 && parts[0] == "app" && parts[1] == "installations" && parts[3] == "access_tokens":
			return http.StatusCreated, map[string]any{"token": "dry-run-token", "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
		case path.Base(p) == "attempts":
			return http.StatusAccepted, map[string]any{}
		case path.Base(p) == "graphql":
			return http.StatusOK, map[string]any{"data": map[string]any{}}
		}
		obj["id"] = id
		obj["node_id"] = "DRYRUN_" + strconv.FormatInt(id, 10)
		obj["created_at"] = now
		obj["updated_at"] = now
		if len(parts) >= 4 && parts[0] == "repos" && (parts[3] == "pulls" || parts[3] == "issues") && len(parts) == 4 {
			if parts[3] == "pulls" {
				// A create names head and base by ref; the answer holds objects.
				for _, k := range []string{"head", "base"} {
					if ref, ok := obj[k].(string); ok {
						obj[k] = map[string]any{"ref": ref}
					}
				}
			}
			n := t.number(parts[1] + "/" + parts[2])
			obj["number"] = n
			obj["html_url"] = "https://github.com/" + parts[1] + "/" + parts[2] + "/" + map[string]string{"pulls": "pull", "issues": "issues"}[parts[3]] + "/" + strconv.Itoa(n)
		}
		if len(parts) >= 2 && parts[len(parts)-1] == "comments" {
			obj["html_url"] = "https://github.com" + strings.TrimPrefix(p, "/repos") + "#issuecomment-" + strconv.FormatInt(id, 10)
		}
		return http.StatusCreated, obj
	case http.MethodPatch, http.MethodPut:
		if n, err := strconv.ParseInt(parts[len(parts)-1], 10, 64); err == nil {
			obj["id"] = n
		}
		obj["updated_at"] = now
		return http.StatusOK, obj
	case http.MethodDelete:
		return http.StatusNoContent, nil
	}
	return http.StatusOK, map[string]any{}
}
