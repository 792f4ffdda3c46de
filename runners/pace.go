package runners

import (
	"context"
	"net/http"
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
// token and paces writes. Retries (5xx, rate limits, as GitHub asks) are
// ghretry's, above it, so that each attempt is paced too.
type ghTransport struct {
	base  http.RoundTripper
	token func(ctx context.Context) (string, error)
	pace  *pacer
	// host is the API's host: only requests to it carry the token, not a
	// redirect elsewhere (GitHub sends downloads to storage hosts).
	host string
}

func (t *ghTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	r := req
	if req.URL.Host == t.host {
		tok, err := t.token(ctx)
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		r = req.Clone(ctx)
		r.Header.Set("Authorization", "token "+tok)
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		if err := t.pace.wait(ctx); err != nil {
			return nil, err
		}
	}
	return t.base.RoundTrip(r)
}
