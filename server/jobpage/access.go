package jobpage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// Access modes (ADBOT_JOBS_PAGE).
const (
	// ModeLoopback serves the pages to clients on the server's own host only.
	ModeLoopback = "loopback"
	// ModeOAuth serves them to the GitHub logins of Config.Allow, signed in
	// with GitHub OAuth.
	ModeOAuth = "oauth"
	// ModeOff serves no job page at all.
	ModeOff = "off"
)

// Tuning values of the sign-in.
const (
	// DefaultSessionTTL is how long a signed-in session lasts.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultStateTTL is how long a sign-in may take at GitHub.
	DefaultStateTTL = 10 * time.Minute
	// DefaultOAuthTimeout bounds each request to GitHub during sign-in.
	DefaultOAuthTimeout = 15 * time.Second
)

// Cookie names.
const (
	sessionCookie = "adbot_jobs_session"
	stateCookie   = "adbot_jobs_state"
)

// Config says who may see the job pages. The zero value is ModeLoopback.
type Config struct {
	// Mode is ModeLoopback (the default), ModeOAuth or ModeOff (ADBOT_JOBS_PAGE).
	Mode string `yaml:"mode"`
	// Allow lists the GitHub logins that may sign in under ModeOAuth
	// (ADBOT_JOBS_ALLOW, comma- or space-separated); case does not matter.
	Allow []string `yaml:"allow"`
	// OAuthClientID and OAuthClientSecret are the GitHub OAuth (or App)
	// client's credentials (GITHUB_OAUTH_CLIENT_ID, GITHUB_OAUTH_CLIENT_SECRET).
	// Its callback URL must be <public URL>/jobs/-/auth/callback.
	OAuthClientID     string `yaml:"oauth_client_id"`
	OAuthClientSecret string `yaml:"oauth_client_secret"`
}

// ParseLogins splits a list of GitHub logins separated by commas or spaces.
func ParseLogins(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// Normalize returns c with the default mode filled in.
func (c Config) Normalize() Config {
	if c.Mode == "" {
		c.Mode = ModeLoopback
	}
	return c
}

// Validate checks c (after Normalize).
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeLoopback, ModeOff:
	case ModeOAuth:
		if c.OAuthClientID == "" || c.OAuthClientSecret == "" {
			errs = append(errs, errors.New("ADBOT_JOBS_PAGE=oauth needs GITHUB_OAUTH_CLIENT_ID and GITHUB_OAUTH_CLIENT_SECRET"))
		}
		if len(c.Allow) == 0 {
			errs = append(errs, errors.New("ADBOT_JOBS_PAGE=oauth needs ADBOT_JOBS_ALLOW, the GitHub logins that may see the job pages"))
		}
	default:
		errs = append(errs, fmt.Errorf("ADBOT_JOBS_PAGE=%q is not loopback, oauth or off", c.Mode))
	}
	for _, l := range c.Allow {
		if !validLogin(l) {
			errs = append(errs, fmt.Errorf("ADBOT_JOBS_ALLOW: %q is not a GitHub login", l))
		}
	}
	return errors.Join(errs...)
}

// validLogin reports whether s has the form of a GitHub login: letters,
// digits and single inner hyphens, at most 39 characters.
func validLogin(s string) bool {
	if s == "" || len(s) > 39 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// loopbackOnly refuses, with 403 and how to open the pages up, every client
// that is not on this host, and every request that came through a proxy (a
// proxy on this host would make a remote client look local).
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		proxied := r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != ""
		if err != nil || ip == nil || !ip.IsLoopback() || proxied {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, loopbackRefusal)
			return
		}
		next.ServeHTTP(w, r)
	})
}

const loopbackRefusal = `The job pages answer only to clients on the server's own host (ADBOT_JOBS_PAGE=loopback, the default),
and not through a proxy.

To see them from elsewhere, either reach the server through an SSH tunnel
(ssh -L 8080:localhost:8080 <server host>, then http://localhost:8080/jobs),
or let GitHub users sign in:
  ADBOT_JOBS_PAGE=oauth
  ADBOT_JOBS_ALLOW=<GitHub logins, comma-separated>
  GITHUB_OAUTH_CLIENT_ID=<client id>  GITHUB_OAUTH_CLIENT_SECRET=<client secret>
with the OAuth client's callback URL set to <public URL>/jobs/-/auth/callback.
`

// signer signs and checks session and state cookies with a key made at start:
// a restart signs everyone out.
type signer struct {
	key []byte
	now func() time.Time
}

func newSigner() (*signer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	return &signer{key: key, now: time.Now}, nil
}

// sign returns "<payload>.<expiry>.<mac>", payload base64url-encoded.
func (s *signer) sign(purpose, payload string, ttl time.Duration) string {
	body := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + strconv.FormatInt(s.now().Add(ttl).Unix(), 10)
	return body + "." + s.mac(purpose, body)
}

func (s *signer) mac(purpose, body string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose + "\x00" + body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify returns the payload of a value made by sign for purpose, if the
// value is intact and unexpired.
func (s *signer) verify(purpose, v string) (string, bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return "", false
	}
	body, mac := v[:i], v[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.mac(purpose, body))) {
		return "", false
	}
	enc, exp, ok := strings.Cut(body, ".")
	if !ok {
		return "", false
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || s.now().Unix() >= e {
		return "", false
	}
	p, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	return string(p), true
}

// oauthGate lets through requests with a valid session of an allowed login;
// it sends others to sign in (pages) or answers 401 (event streams, logs).
type oauthGate struct {
	cfg    Config
	signer *signer
	oauth  *oauth2.Config
	// apiURL is GitHub's REST API base, ending in "/".
	apiURL string
	http   *http.Client
}

func (g *oauthGate) allowed(login string) bool {
	return slices.ContainsFunc(g.cfg.Allow, func(a string) bool { return strings.EqualFold(a, login) })
}

// secure reports whether the browser reached us over HTTPS (directly or
// through the platform's proxy), so cookies are marked Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (g *oauthGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			if login, ok := g.signer.verify(sessionCookie, c.Value); ok && g.allowed(login) {
				next.ServeHTTP(w, r)
				return
			}
		}
		if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/events") && !strings.Contains(r.URL.Path, "/logs/") {
			http.Redirect(w, r, loginRoute+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		http.Error(w, "sign in at "+loginRoute+" first", http.StatusUnauthorized)
	})
}

// login starts the sign-in: a random state in a signed cookie, then GitHub.
func (g *oauthGate) login(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		http.Error(w, "sign-in unavailable", http.StatusInternalServerError)
		return
	}
	state := base64.RawURLEncoding.EncodeToString(b)
	next := safeNext(r.URL.Query().Get("next"))
	http.SetCookie(w, &http.Cookie{
		Name: stateCookie, Value: g.signer.sign(stateCookie, state+" "+next, DefaultStateTTL),
		Path: authPrefix, MaxAge: int(DefaultStateTTL / time.Second),
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, g.oauth.AuthCodeURL(state), http.StatusSeeOther)
}

// callback finishes the sign-in: checks the state, trades the code for a
// token, asks GitHub whose it is, and lets allowed logins in.
func (g *oauthGate) callback(w http.ResponseWriter, r *http.Request) {
	log := zerolog.Ctx(r.Context())
	c, err := r.Cookie(stateCookie)
	var payload string
	ok := err == nil
	if ok {
		payload, ok = g.signer.verify(stateCookie, c.Value)
	}
	state, next, _ := strings.Cut(payload, " ")
	q := r.URL.Query()
	if !ok || state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(q.Get("state"))) != 1 {
		http.Error(w, "sign-in failed: it took too long or did not start here; start again at "+loginRoute, http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: authPrefix, MaxAge: -1, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		http.Error(w, "GitHub did not sign you in: "+e, http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultOAuthTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, g.http)
	tok, err := g.oauth.Exchange(ctx, q.Get("code"))
	if err != nil {
		log.Warn().Err(err).Msg("job page: OAuth code exchange")
		http.Error(w, "sign-in failed: GitHub did not take the code", http.StatusBadGateway)
		return
	}
	login, err := g.user(ctx, tok)
	if err != nil {
		log.Warn().Err(err).Msg("job page: OAuth user")
		http.Error(w, "sign-in failed: GitHub did not say who you are", http.StatusBadGateway)
		return
	}
	if !g.allowed(login) {
		log.Info().Str("login", login).Msg("job page: sign-in by a login not in ADBOT_JOBS_ALLOW")
		http.Error(w, "signed in as "+login+", who is not in ADBOT_JOBS_ALLOW", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: g.signer.sign(sessionCookie, login, DefaultSessionTTL),
		Path: Route, MaxAge: int(DefaultSessionTTL / time.Second),
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// user asks GitHub for the login the token belongs to.
func (g *oauthGate) user(ctx context.Context, tok *oauth2.Token) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.apiURL+"user", nil)
	if err != nil {
		return "", fmt.Errorf("get user: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	tok.SetAuthHeader(req)
	resp, err := g.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("get user: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get user: %s", resp.Status)
	}
	var u struct {
		Login string `json:"login"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&u); err != nil {
		return "", fmt.Errorf("decode user: %w", err)
	}
	if u.Login == "" {
		return "", errors.New("get user: no login in the answer")
	}
	return u.Login, nil
}

// safeNext keeps a return path only when it stays on the job pages.
func safeNext(next string) string {
	if next == Route || strings.HasPrefix(next, Route+"/") && !strings.HasPrefix(next, authPrefix) && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return Route
}
