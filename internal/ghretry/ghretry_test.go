package ghretry_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/ghretry"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// sleeps records the waits instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

type auth struct{ next http.RoundTripper }

func (a auth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "token ghs_test")
	return a.next.RoundTrip(r)
}

func client(t *testing.T, s *fakegithub.Server, opt ghretry.Options) *github.Client {
	gh := github.NewClient(&http.Client{Transport: ghretry.New(auth{http.DefaultTransport}, opt)})
	u, _ := url.Parse(s.URL())
	gh.BaseURL = u
	return gh
}

func TestRetries(t *testing.T) {
	reset := strconv.FormatInt(now.Add(90*time.Second).Unix(), 10)
	tests := []struct {
		name      string
		status    int
		header    http.Header
		n         int
		wantWaits func([]time.Duration) bool
		wantOK    bool
	}{
		{"secondary rate limit honours retry-after", 403, http.Header{"Retry-After": {"7"}}, 2,
			func(w []time.Duration) bool { return cmp.Equal(w, []time.Duration{7 * time.Second, 7 * time.Second}) }, true},
		{"429 honours retry-after", 429, http.Header{"Retry-After": {"3"}}, 1,
			func(w []time.Duration) bool { return cmp.Equal(w, []time.Duration{3 * time.Second}) }, true},
		{"primary limit waits for the reset", 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}, 1,
			func(w []time.Duration) bool { return cmp.Equal(w, []time.Duration{91 * time.Second}) }, true},
		{"secondary limit without a time waits a minute", 403, nil, 1,
			func(w []time.Duration) bool { return cmp.Equal(w, []time.Duration{time.Minute}) }, true},
		{"5xx backs off exponentially", 502, nil, 3,
			func(w []time.Duration) bool {
				return len(w) == 3 && w[0] >= 400*time.Millisecond && w[0] <= 600*time.Millisecond && w[1] > w[0] && w[2] > w[1]
			}, true},
		{"gives up after MaxRetries", 503, nil, 10,
			func(w []time.Duration) bool { return len(w) == 5 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakegithub.New(t)
			var sl sleeps
			gh := client(t, s, ghretry.Options{Now: func() time.Time { return now }, Sleep: sl.sleep})
			s.FailNext("POST", "/repos/o/r/issues/1/comments", tt.n, tt.status, tt.header)
			_, _, err := gh.Issues.CreateComment(context.Background(), "o", "r", 1, &github.IssueComment{Body: github.String("[AGENT] hi")})
			if (err == nil) != tt.wantOK {
				t.Errorf("err = %v, want ok %v", err, tt.wantOK)
			}
			if !tt.wantWaits(sl.d) {
				t.Errorf("waits %v", sl.d)
			}
			wantComments := 0
			if tt.wantOK {
				wantComments = 1
			}
			if got := len(s.Comments("o", "r", 1)); got != wantComments {
				t.Errorf("%d comments, want %d (the body is re-sent intact)", got, wantComments)
			}
			if tt.wantOK {
				if c := s.Comments("o", "r", 1)[0]; c.Body != "[AGENT] hi" {
					t.Errorf("body %q after retries", c.Body)
				}
			}
		})
	}
}

func TestNoRetry(t *testing.T) {
	s := fakegithub.New(t)
	var sl sleeps
	gh := client(t, s, ghretry.Options{Sleep: sl.sleep})
	ctx := context.Background()
	// A plain 403 (no permission) and a 404 are answers, not failures.
	s.FailNext("", "/repos/o/r/pulls", 1, 404, nil)
	if _, _, err := gh.PullRequests.Get(ctx, "o", "r", 1); err == nil {
		t.Error("404 not reported")
	}
	if len(sl.d) != 0 {
		t.Errorf("retried a 404: waits %v", sl.d)
	}
}

func TestBoundedByContext(t *testing.T) {
	s := fakegithub.New(t)
	var sl sleeps
	gh := client(t, s, ghretry.Options{Sleep: sl.sleep})
	// A wait past the deadline is not started: the limit comes back at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.FailNext("POST", "/repos/o/r/issues", 1, 403, http.Header{"Retry-After": {"120"}})
	_, _, err := gh.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: github.String("x")})
	if _, ok := err.(*github.AbuseRateLimitError); !ok {
		t.Errorf("err = %T %v, want the secondary rate limit", err, err)
	}
	if len(sl.d) != 0 {
		t.Errorf("waited %v past the deadline", sl.d)
	}
	// A cancelled context ends a wait.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	s.FailNext("GET", "/repos/o/r/pulls", 1, 500, nil)
	req, _ := http.NewRequestWithContext(ctx2, "GET", s.URL()+"repos/o/r/pulls/1", nil)
	if _, err := (&http.Client{Transport: ghretry.New(auth{http.DefaultTransport}, ghretry.Options{})}).Do(req); err == nil {
		t.Error("cancelled request succeeded")
	}
}
