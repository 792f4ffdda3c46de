// Package ghretry is an http.RoundTripper that retries GitHub API requests
// that failed for a passing reason: a 5xx answer, a 429, or a 403 that is a
// rate limit (primary or secondary). It waits as GitHub asks: the retry-after
// header when present, else until x-ratelimit-reset when
// x-ratelimit-remaining is 0, else at least a minute for a rate limit and an
// exponential backoff for a 5xx. Every wait is bounded by the request's
// context: a wait that would outlast the context's deadline (or MaxWait) is
// not started, and the last answer is returned for the caller to handle (for
// example by retrying the whole job later).
//
// Use it under go-github, for example with go-githubapp:
//
//	githubapp.NewClientCreator(..., githubapp.WithClientMiddleware(ghretry.Middleware(ghretry.Options{})))
//
// or directly: &http.Client{Transport: ghretry.New(http.DefaultTransport, ghretry.Options{})}.
//
// A 5xx answer to a POST may come after GitHub acted on it; callers that
// create things (comments, pull requests) should make creation idempotent
// (adbot records what it made in the job).
package ghretry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for Options.
const (
	DefaultMaxRetries     = 5
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultRateLimitWait  = time.Minute
	DefaultMaxWait        = 5 * time.Minute
	maxErrorBodyInspected = 64 << 10
)

// Options tune a Transport. The zero value gives the defaults.
type Options struct {
	// MaxRetries bounds the retries of one request (DefaultMaxRetries).
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff after a 5xx.
	MinBackoff, MaxBackoff time.Duration
	// RateLimitWait is the wait for a rate limit that names no time (DefaultRateLimitWait).
	RateLimitWait time.Duration
	// MaxWait is the longest single wait (DefaultMaxWait); a longer one is not started.
	MaxWait time.Duration
	// Now and Sleep stand in for the clock in tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o Options) withDefaults() Options {
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.RateLimitWait == 0 {
		o.RateLimitWait = DefaultRateLimitWait
	}
	if o.MaxWait == 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Transport retries GitHub requests; see the package documentation.
type Transport struct {
	base http.RoundTripper
	opt  Options
}

// New wraps base (http.DefaultTransport if nil).
func New(base http.RoundTripper, opt Options) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{base: base, opt: opt.withDefaults()}
}

// Middleware adapts New to go-githubapp's ClientMiddleware signature.
func Middleware(opt Options) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper { return New(next, opt) }
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	getBody := req.GetBody
	if req.Body != nil && req.Body != http.NoBody && getBody == nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("buffer body of %s %s: %w", req.Method, req.URL.Path, err)
		}
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.Body, _ = getBody()
	}
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.Clone(ctx)
			if getBody != nil {
				body, err := getBody()
				if err != nil {
					return nil, fmt.Errorf("rewind body of %s %s: %w", req.Method, req.URL.Path, err)
				}
				r.Body = body
			}
		}
		resp, err := t.base.RoundTrip(r)
		wait, why := t.decide(req, resp, err, attempt)
		if why == "" || attempt >= t.opt.MaxRetries {
			return resp, err
		}
		if wait > t.opt.MaxWait {
			return resp, err
		}
		if dl, ok := ctx.Deadline(); ok && t.opt.Now().Add(wait).After(dl) {
			return resp, err
		}
		zerolog.Ctx(ctx).Warn().Str("method", req.Method).Str("path", req.URL.Path).Str("reason", why).
			Dur("wait", wait).Int("attempt", attempt+1).Msg("Retrying GitHub request")
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBodyInspected))
			_ = resp.Body.Close()
		}
		if err := t.opt.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s %s: waiting to retry (%s): %w", req.Method, req.URL.Path, why, err)
		}
	}
}

// decide says whether and how long to wait before retrying; why is "" for no retry.
func (t *Transport) decide(req *http.Request, resp *http.Response, err error, attempt int) (time.Duration, string) {
	if err != nil {
		if req.Context().Err() != nil {
			return 0, ""
		}
		var ne net.Error
		idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead
		if idempotent && (errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
			return t.backoff(attempt), "network error: " + err.Error()
		}
		return 0, ""
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return t.rateLimitWait(resp), "429 rate limited"
	case resp.StatusCode == http.StatusForbidden && isRateLimit(resp):
		return t.rateLimitWait(resp), "403 rate limited"
	case resp.StatusCode >= 500 && resp.StatusCode <= 599:
		if d, ok := retryAfter(resp, t.opt.Now()); ok {
			return d, fmt.Sprintf("%d server error", resp.StatusCode)
		}
		return t.backoff(attempt), fmt.Sprintf("%d server error", resp.StatusCode)
	}
	return 0, ""
}

func (t *Transport) backoff(attempt int) time.Duration {
	d := t.opt.MinBackoff << min(attempt, 20)
	if d <= 0 || d > t.opt.MaxBackoff {
		d = t.opt.MaxBackoff
	}
	// ±20% jitter so that clients that failed together do not retry together.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// rateLimitWait follows GitHub's rules: retry-after, else the reset time when
// nothing remains, else at least RateLimitWait.
func (t *Transport) rateLimitWait(resp *http.Response) time.Duration {
	now := t.opt.Now()
	if d, ok := retryAfter(resp, now); ok {
		return d
	}
	if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		if sec, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			d := time.Unix(sec, 0).Sub(now) + time.Second
			if d < time.Second {
				d = time.Second
			}
			return d
		}
	}
	return t.opt.RateLimitWait
}

// retryAfter reads retry-after as seconds or an HTTP date.
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if sec, err := strconv.Atoi(v); err == nil && sec >= 0 {
		return time.Duration(sec) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		d := at.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// isRateLimit tells a 403 rate limit from a 403 refusal: a retry-after header,
// nothing remaining of the quota, or GitHub's message saying so. The body is
// read and put back.
func isRateLimit(resp *http.Response) bool {
	if resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		return true
	}
	if resp.Body == nil {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyInspected))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return false
	}
	l := strings.ToLower(string(b))
	return strings.Contains(l, "rate limit") || strings.Contains(l, "abuse detection")
}
