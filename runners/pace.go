package runners

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// pacer spaces content-creating requests: at least interval apart and at most
// perHour in any hour (GitHub's secondary limits: about 80 a minute, 500 an hour).
type pacer struct {
	interval time.Duration
	perHour  int

	mu     sync.Mutex
	next   time.Time
	recent []time.Time
}

// DefaultPerHour is the most content-creating requests a runner sends in an hour.
const DefaultPerHour = 480

func (r *Runner) pacer() *pacer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pace == nil {
		iv := r.cfg.Pace
		if iv < 0 {
			iv = 0
		}
		r.pace = &pacer{interval: iv, perHour: DefaultPerHour}
	}
	return r.pace
}

// wait blocks until another write may go out, and books it.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	at := now
	if p.next.After(at) {
		at = p.next
	}
	cut := now.Add(-time.Hour)
	for len(p.recent) > 0 && p.recent[0].Before(cut) {
		p.recent = p.recent[1:]
	}
	if p.perHour > 0 && len(p.recent) >= p.perHour {
		if t := p.recent[len(p.recent)-p.perHour].Add(time.Hour); t.After(at) {
			at = t
		}
	}
	p.next = at.Add(p.interval)
	p.recent = append(p.recent, at)
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}

// ghTransport authenticates each GitHub request with the job's installation
// token, paces writes, and waits out rate limits as GitHub asks: retry-after,
// else x-ratelimit-reset when x-ratelimit-remaining is 0, else a minute.
type ghTransport struct {
	base   http.RoundTripper
	token  func(ctx context.Context) (string, error)
	pace   *pacer
	tries  int
	maxDur time.Duration
}

func (t *ghTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tok, err := t.token(ctx)
	if err != nil {
		return nil, err
	}
	write := req.Method != http.MethodGet && req.Method != http.MethodHead
	for attempt := 1; ; attempt++ {
		r := req.Clone(ctx)
		if req.GetBody != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, fmt.Errorf("rewind request body: %w", err)
			}
		}
		r.Header.Set("Authorization", "token "+tok)
		if write {
			if err := t.pace.wait(ctx); err != nil {
				return nil, err
			}
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		wait, limited := rateLimitWait(resp)
		if !limited || attempt >= t.tries || (req.Body != nil && req.GetBody == nil) || wait > t.maxDur {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// rateLimitWait says whether resp is a rate-limit refusal and how long to wait.
func rateLimitWait(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			return time.Duration(n) * time.Second, true
		}
	}
	if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			return max(time.Until(time.Unix(n, 0)), time.Second), true
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return time.Minute, true
	}
	return 0, false // a plain 403: a permission problem, not a limit
}
