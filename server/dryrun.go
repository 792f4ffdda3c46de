package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
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
// they would make is logged (method, URL, JSON body) on log, and answered with
// a plausible canned response (201 with a fresh id for a create, the patched
// object for an edit, write permission for a permission check, an empty list
// for a list). adbot dev uses it when no App credentials are configured.
func NewDryRunClientCreator(log zerolog.Logger) githubapp.ClientCreator {
	return &dryRunClientCreator{rt: &dryRunTransport{log: log}}
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
	ev := t.log.Info().Str(LogKeyMethod, r.Method).Str(LogKeyURL, r.URL.String())
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
			return http.StatusOK, map[string]any{"permission": "write", "role_name": "write", "user": map[string]any{"login": parts[4]}}
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
			obj["number"] = id
			obj["html_url"] = "https://github.com/" + parts[1] + "/" + parts[2] + "/" + parts[3] + "/" + strconv.FormatInt(id, 10)
			// A pull request's head and base are branches, not names.
			for _, k := range []string{"head", "base"} {
				if ref, ok := obj[k].(string); ok {
					obj[k] = map[string]any{"ref": ref}
				}
			}
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
