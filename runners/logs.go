package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/runners/proc"
)

// LogSubjectPrefix is followed by the job key and carries a running cycle's
// output, redacted, as LogChunk messages in order (core NATS, for a live view).
const LogSubjectPrefix = "adbot.logs."

// LogChunk is one piece of a cycle's process output on LogSubjectPrefix+<job>.
type LogChunk struct {
	Cycle  int    `json:"cycle"`
	Step   string `json:"step"`
	Seq    int    `json:"seq"`
	Stream string `json:"stream"`
	Data   string `json:"data"`
}

// logQueue bounds the output chunks waiting to be published: a publisher
// that falls behind slows the reading of the process's output (proc's own
// queue) rather than dropping any.
const logQueue = 256

// logStream publishes one cycle's output chunks, in order, from one
// goroutine; failures are counted and logged, and close flushes what is
// left before it returns.
type logStream struct {
	r       *Runner
	log     *zerolog.Logger
	subject string
	cycle   int
	ch      chan proc.Chunk
	done    chan struct{}

	mu     sync.Mutex // guards closed and sends against close
	closed bool
}

func (r *Runner) newLogStream(ctx context.Context, job string, cycle int) *logStream {
	s := &logStream{r: r, log: zerolog.Ctx(ctx), subject: LogSubjectPrefix + job, cycle: cycle,
		ch: make(chan proc.Chunk, logQueue), done: make(chan struct{})}
	go s.run() // owned by s; ends when close closes ch
	return s
}

// send queues a chunk. One sent after close (a proxy refusal racing the
// cycle's end, say) is counted and dropped: the stream is flushed already.
func (s *logStream) send(c proc.Chunk) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.r.metrics.logChunksFailed.Inc()
		return
	}
	s.ch <- c
}

func (s *logStream) run() {
	defer close(s.done)
	failed := 0
	for c := range s.ch {
		b, err := json.Marshal(LogChunk{Cycle: s.cycle, Step: c.Step, Seq: c.Seq, Stream: c.Stream, Data: string(c.Data)})
		if err == nil {
			err = s.r.nc.Publish(s.subject, b)
		}
		if err != nil {
			s.r.metrics.logChunksFailed.Inc()
			if failed++; failed == 1 || failed%100 == 0 {
				s.log.Warn().Err(err).Int("failed", failed).Str("step", c.Step).Msg("publish live output")
			}
		}
	}
	if err := s.r.nc.FlushTimeout(2 * time.Second); err != nil {
		s.r.metrics.logChunksFailed.Inc()
		s.log.Warn().Err(err).Msg("flush live output")
	}
}

// close publishes what is queued, flushes, and returns.
func (s *logStream) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	s.mu.Unlock()
	<-s.done
}

// uploadLogs copies the cycle's (already redacted) log files to the log
// object store as <job>/cycle-<n>/<file>. A file that cannot be read or
// stored is counted and logged; the others still go.
func (r *Runner) uploadLogs(ctx context.Context, c bus.Cycle) {
	dir := r.logDir(c)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.metrics.logUploadsFailed.Inc()
			zerolog.Ctx(ctx).Warn().Err(err).Msg("read the cycle's logs")
		}
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := fmt.Sprintf("%s/cycle-%d/%s", c.JobKey, c.Number, e.Name())
		if err := r.uploadLog(ctx, name, filepath.Join(dir, e.Name())); err != nil {
			r.metrics.logUploadsFailed.Inc()
			zerolog.Ctx(ctx).Warn().Err(err).Str("log", name).Msg("upload log")
		}
	}
}

func (r *Runner) uploadLog(ctx context.Context, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = r.res.Logs.Put(ctx, jetstream.ObjectMeta{Name: name}, f)
	return err
}

// runnerMetrics are the runner's own counters (Deps.Metrics registers them).
type runnerMetrics struct {
	logChunksFailed  prometheus.Counter
	logUploadsFailed prometheus.Counter
}

func newRunnerMetrics(reg prometheus.Registerer) *runnerMetrics {
	m := &runnerMetrics{
		logChunksFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "adbot_runner_log_chunks_failed_total",
			Help: "Live output chunks of cycles that could not be published (or flushed) on NATS."}),
		logUploadsFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "adbot_runner_log_uploads_failed_total",
			Help: "Cycle log files that could not be read or stored in the log object store."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.logChunksFailed, m.logUploadsFailed} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					continue // a second runner in the process shares them
				}
			}
		}
	}
	return m
}
