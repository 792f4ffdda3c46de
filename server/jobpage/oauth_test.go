package jobpage

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeOAuth is GitHub's side of the web sign-in: it hands out one code per
// login and trades it for a token once, and answers GET /user for the token.
type fakeOAuth struct {
	clientID, secret string
	mu               sync.Mutex
	codes            map[string]string // code -> login
	tokens           map[string]string // token -> login
}

func newFakeOAuth(t *testing.T) (*fakeOAuth, *httptest.Server) {
	f := &fakeOAuth{clientID: "Iv1.test", secret: randHex(t), codes: map[string]string{}, tokens: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		login, ok := f.codes[r.Form.Get("code")]
		w.Header().Set("Content-Type", "application/json")
		if !ok || r.Form.Get("client_id") != f.clientID || r.Form.Get("client_secret") != f.secret {
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "bad_verification_code"})
			return
		}
		delete(f.codes, r.Form.Get("code"))
		tok := "gho_" + randHex(t)
		f.tokens[tok] = login
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "token_type": "bearer", "scope": ""})
	})
	mux.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		login, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if !ok {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"login": login, "id": 1})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

// authorize is what GitHub does when the user agrees: a code for login,
// sent back with the state.
func (f *fakeOAuth) authorize(t *testing.T, authURL, login string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("client_id") != f.clientID || q.Get("state") == "" || u.Path != "/login/oauth/authorize" {
		t.Fatalf("authorize URL %s: want our client id, a state, /login/oauth/authorize", authURL)
	}
	code := randHex(t)
	f.mu.Lock()
	f.codes[code] = login
	f.mu.Unlock()
	return url.Values{"code": {code}, "state": {q.Get("state")}}
}

func randHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// browser is a cookie-keeping client that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestOAuthSignIn(t *testing.T) {
	fake, gh := newFakeOAuth(t)
	cfg := Config{Mode: ModeOAuth, Allow: []string{"Octo-Cat"}, OAuthClientID: fake.clientID, OAuthClientSecret: fake.secret}
	r := newRig(t, cfg, Deps{WebURL: gh.URL, APIURL: gh.URL + "/", HTTP: gh.Client()})
	r.putJob(t, sampleJob())
	srv := httptest.NewServer(r.page.Handler())
	t.Cleanup(srv.Close)

	// signIn walks the whole flow for login, starting at path, and returns
	// the callback's answer.
	signIn := func(t *testing.T, c *http.Client, path, login string) *http.Response {
		t.Helper()
		resp := get(t, c, srv.URL+path)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), loginRoute+"?next=") {
			t.Fatalf("GET %s without a session: %s to %q, want a redirect to sign in", path, resp.Status, resp.Header.Get("Location"))
		}
		resp = get(t, c, srv.URL+resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in start: %s", resp.Status)
		}
		back := fake.authorize(t, resp.Header.Get("Location"), login)
		return get(t, c, srv.URL+CallbackRoute+"?"+back.Encode())
	}

	t.Run("allowed login", func(t *testing.T) {
		c := browser(t)
		resp := signIn(t, c, "/jobs/acme.trt.42", "octo-cat") // case does not matter
		if diff := cmp.Diff([]string{resp.Status, resp.Header.Get("Location")}, []string{"303 See Other", "/jobs/acme.trt.42"}); diff != "" {
			t.Fatalf("callback (-got +want):\n%s", diff)
		}
		var session *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == sessionCookie {
				session = ck
			}
		}
		if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != Route {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/jobs", session)
		}
		if resp := get(t, c, srv.URL+"/jobs/acme.trt.42"); resp.StatusCode != http.StatusOK {
			t.Errorf("job page with a session: %s", resp.Status)
		}
		// A forged session (an allowed login spelt otherwise, the same MAC) does not pass.
		forged := browser(t)
		u, _ := url.Parse(srv.URL + Route)
		parts := strings.SplitN(session.Value, ".", 3)
		forged.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "T2N0by1DYXQ." + parts[1] + "." + parts[2], Path: Route}})
		if resp := get(t, forged, srv.URL+"/jobs"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("forged session: %s, want a redirect to sign in", resp.Status)
		}
	})

	t.Run("login not allowed", func(t *testing.T) {
		resp := signIn(t, browser(t), "/jobs", "mallory")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("callback for a login not allowed: %s, want 403", resp.Status)
		}
		for _, ck := range resp.Cookies() {
			if ck.Name == sessionCookie {
				t.Errorf("a session was given to a login not allowed")
			}
		}
	})

	t.Run("state from elsewhere", func(t *testing.T) {
		c := browser(t)
		get(t, c, srv.URL+loginRoute)
		back := fake.authorize(t, gh.URL+"/login/oauth/authorize?client_id="+fake.clientID+"&state=forged", "octo-cat")
		if resp := get(t, c, srv.URL+CallbackRoute+"?"+back.Encode()); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("callback with a state we did not make: %s, want 400", resp.Status)
		}
	})

	t.Run("code GitHub refuses", func(t *testing.T) {
		c := browser(t)
		resp := get(t, c, srv.URL+loginRoute)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		back := url.Values{"code": {"not-issued"}, "state": {loc.Query().Get("state")}}
		if resp := get(t, c, srv.URL+CallbackRoute+"?"+back.Encode()); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("callback with a code GitHub refuses: %s, want 502", resp.Status)
		}
	})

	t.Run("streams and logs answer 401", func(t *testing.T) {
		for _, path := range []string{"/jobs/acme.trt.42/events", "/jobs/-/events", "/jobs/acme.trt.42/logs/1/x"} {
			if resp := get(t, browser(t), srv.URL+path); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without a session: %s, want 401", path, resp.Status)
			}
		}
	})

	t.Run("any client address", func(t *testing.T) {
		// Under OAuth the address does not matter, the session does.
		w := r.get(t, "/jobs", "203.0.113.9:443", nil)
		if w.Code != http.StatusSeeOther {
			t.Errorf("remote client without a session: %d, want a redirect to sign in", w.Code)
		}
	})
}

func TestSigner(t *testing.T) {
	s, err := newSigner()
	if err != nil {
		t.Fatal(err)
	}
	now := testClock
	s.now = func() time.Time { return now }
	v := s.sign("a", "octo-cat", time.Hour)
	for _, tc := range []struct {
		name    string
		purpose string
		value   string
		later   time.Duration
		ok      bool
	}{
		{"intact", "a", v, 0, true},
		{"other purpose", "b", v, 0, false},
		{"expired", "a", v, time.Hour, false},
		{"tampered", "a", "x" + v, 0, false},
		{"no mac", "a", strings.Join(strings.Split(v, ".")[:2], "."), 0, false},
		{"empty", "a", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now = testClock.Add(tc.later)
			got, ok := s.verify(tc.purpose, tc.value)
			if ok != tc.ok || ok && got != "octo-cat" {
				t.Errorf("verify = %q, %v; want ok %v", got, ok, tc.ok)
			}
		})
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/jobs", "/jobs"},
		{"/jobs/acme.trt.1", "/jobs/acme.trt.1"},
		{"https://evil.example/jobs", "/jobs"},
		{"//evil.example/jobs", "/jobs"},
		{"/jobs/-/auth/callback", "/jobs"},
		{"/metrics", "/jobs"},
		{"", "/jobs"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if diff := cmp.Diff(safeNext(tc.in), tc.want); diff != "" {
				t.Errorf("safeNext (-got +want):\n%s", diff)
			}
		})
	}
}

// FuzzVerify: no value that sign did not make for the purpose passes.
func FuzzVerify(f *testing.F) {
	s, err := newSigner()
	if err != nil {
		f.Fatal(err)
	}
	good := s.sign("p", "octo-cat", time.Hour)
	f.Add(good)
	f.Add("b2N0by1jYXQ.99999999999.x")
	f.Fuzz(func(t *testing.T, v string) {
		if got, ok := s.verify("p", v); ok && v != good {
			t.Errorf("verify(%q) = %q, true: a value sign did not make", v, got)
		}
	})
}
