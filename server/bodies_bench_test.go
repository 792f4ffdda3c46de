package server

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvidia/adbot/internal/fakegithub"
)

// zeros reads as an endless run of '0' bytes: a body that the client never
// holds in memory.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

// rssKB reads this process's resident set size from /proc (Linux).
func rssKB(b *testing.B) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkBodiesInFlight sends 32 webhook bodies of 25 MB (GitHub's
// largest) at once, as an attacker without the secret could, and reports
// the process's peak resident set while they are read, with the in-flight
// bound at its default and with no bound. The client makes its bodies on
// the fly, so the figure is the server's (plus the test's own baseline,
// reported as base-RSS-MB). Run it with
//
//	go test ./server -run '^$' -bench BodiesInFlight -benchtime 3x
func BenchmarkBodiesInFlight(b *testing.B) {
	const (
		concurrent = 32
		size       = DefaultMaxBodyBytes
	)
	for _, bc := range []struct {
		name  string
		bound int64
	}{
		{"bound=default", DefaultMaxBodiesInFlight},
		{"bound=none", 1 << 40},
	} {
		b.Run(bc.name, func(b *testing.B) {
			gh := fakegithub.New(b)
			cfg := testConfig(b, gh.URL())
			cfg.Server.MaxBodiesInFlight = bc.bound
			cfg.Server.ReadTimeout = time.Minute
			_, base := startServer(b, cfg, withPublishHandler)
			url := base + WebhookRoute
			client := &http.Client{Timeout: time.Minute}
			var peak, baseline atomic.Int64
			var refused atomic.Int64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				runtime.GC()
				debug.FreeOSMemory()
				baseline.Store(rssKB(b))
				peak.Store(0)
				stop := make(chan struct{})
				var sampler sync.WaitGroup
				sampler.Go(func() {
					t := time.NewTicker(2 * time.Millisecond)
					defer t.Stop()
					for {
						if n := rssKB(b); n > peak.Load() {
							peak.Store(n)
						}
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				})
				b.StartTimer()
				var wg sync.WaitGroup
				for range concurrent {
					wg.Go(func() {
						req, err := http.NewRequest(http.MethodPost, url, io.LimitReader(zeros{}, size))
						if err != nil {
							b.Error(err)
							return
						}
						req.ContentLength = size
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("X-GitHub-Event", "issues")
						req.Header.Set("X-GitHub-Delivery", "bench")
						resp, err := client.Do(req)
						if err != nil {
							refused.Add(1) // the server answered early and closed
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusServiceUnavailable {
							refused.Add(1)
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				close(stop)
				sampler.Wait()
				b.StartTimer()
			}
			b.ReportMetric(float64(peak.Load())/1024, "peak-RSS-MB")
			b.ReportMetric(float64(baseline.Load())/1024, "base-RSS-MB")
			b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
		})
	}
}
