// Package server wires adbot serve: configuration, HTTP routes, the go-githubapp
// dispatcher, the embedded or external NATS server, the token broker and the
// redelivery sweeper. It holds no business logic: events are parsed in
// handlers/, commands carried out in jobs/, cycles run in runners/.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/version"
	"github.com/nvidia/adbot/server/jobpage"
)

// Routes.
const (
	// WebhookRoute receives GitHub deliveries.
	WebhookRoute = githubapp.DefaultWebhookRoute
	// HealthRoute answers 200 while the process is alive.
	HealthRoute = "/healthz"
	// ReadyRoute answers 200 when NATS is connected and the streams exist.
	ReadyRoute = "/readyz"
	// MetricsRoute serves Prometheus metrics.
	MetricsRoute = "/metrics"
)

// Server is adbot's webhook server with its bus. Build it with New, run it with
// Run or Serve; both release everything New started when they return.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	clients githubapp.ClientCreator
	// dryRun is set when clients only print the calls they would make.
	dryRun bool
	// botName is the App's login, "<slug>[bot]" ("" when GitHub did not say).
	botName string

	ns  *natsserver.Server // nil with an external NATS
	nc  *nats.Conn
	res *bus.Resources
	// ncClosed is closed when nc has closed (after a drain).
	ncClosed chan struct{}

	reg     *prometheus.Registry
	metrics *metrics
	handler http.Handler
	// jobs is the live job pages (nil when ADBOT_JOBS_PAGE=off).
	jobs *jobpage.Page

	// handlers receive verified deliveries; set by New, replaceable in tests.
	handlers []githubapp.EventHandler
	// extra are run with the server, owned by Serve (the dev runner).
	extra []func(context.Context, *Server) error
	// middleware wraps the routes, outermost last.
	middleware []func(http.Handler) http.Handler
	// noWorker keeps the command workers from starting (tests that inspect the command stream).
	noWorker bool

	// ready is set once the bus is set up, serving once Serve has started everything.
	ready     atomic.Bool
	serving   atomic.Bool
	closeOnce sync.Once
}

// Option adjusts a Server built by New.
type Option func(*Server)

// WithClientCreator replaces the GitHub client creator (adbot dev without App credentials).
func WithClientCreator(cc githubapp.ClientCreator, dryRun bool) Option {
	return func(s *Server) { s.clients, s.dryRun = cc, dryRun }
}

// WithoutWorker keeps the command workers from starting: commands stay on
// the stream (benchmarks of the intake alone, tests of the stream).
func WithoutWorker() Option { return func(s *Server) { s.noWorker = true } }

// WithMiddleware wraps every route in mw (instrumentation in benchmarks).
func WithMiddleware(mw func(http.Handler) http.Handler) Option {
	return func(s *Server) { s.middleware = append(s.middleware, mw) }
}

// WithLogger sets the logger for what happens outside a request or Run's context.
func WithLogger(l zerolog.Logger) Option { return func(s *Server) { s.log = l } }

// WithRun adds a function that runs alongside the server and stops with it.
func WithRun(f func(context.Context, *Server) error) Option {
	return func(s *Server) { s.extra = append(s.extra, f) }
}

// New validates cfg, starts the embedded NATS server (unless cfg.NATS.URL is
// set), connects, ensures the bus resources and builds the HTTP routes.
func New(cfg Config, opts ...Option) (*Server, error) {
	s := &Server{cfg: cfg, log: zerolog.Nop()}
	for _, o := range opts {
		o(s)
	}
	if err := cfg.Validate(s.clients == nil); err != nil {
		return nil, err
	}
	if s.clients == nil {
		cc, err := newClientCreator(cfg.GitHub)
		if err != nil {
			return nil, err
		}
		s.clients = cc
	}
	if err := s.startBus(); err != nil {
		s.Close()
		return nil, err
	}
	s.reg = prometheus.NewRegistry()
	s.metrics = newMetrics(s.reg, s.res)
	s.botName = s.botLogin()
	handlers, err := s.eventHandlers()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.handlers = handlers
	if s.jobs, err = s.jobPage(); err != nil {
		s.Close()
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// newClientCreator builds the App's GitHub clients: cached per installation,
// with a user agent, a timeout and retries on rate limits and server errors.
func newClientCreator(c GitHubConfig) (githubapp.ClientCreator, error) {
	var gc githubapp.Config
	gc.V3APIURL = c.V3APIURL
	gc.V4APIURL = v4URL(c.V3APIURL)
	gc.App.IntegrationID = c.AppID
	gc.App.PrivateKey = c.PrivateKey
	gc.App.WebhookSecret = c.WebhookSecret
	cc, err := githubapp.NewDefaultCachingClientCreator(gc,
		githubapp.WithClientUserAgent(c.UserAgent+"/"+version.String()),
		githubapp.WithClientTimeout(c.Timeout),
		githubapp.WithClientMiddleware(clientMiddleware()...),
		githubapp.WithTransport(nullBodyFix{newTransport()}),
	)
	if err != nil {
		return nil, fmt.Errorf("github client creator: %w", err)
	}
	return cc, nil
}

// newTransport is the HTTP transport to GitHub and the Hub: http.DefaultTransport
// keeps only two idle connections per host, so concurrent workers would dial
// (and TLS-handshake) a new one for most requests.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * DefaultMaxIdleConnsPerHost
	t.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	return t
}

// nullBodyFix sends "{}" where a client would POST the JSON body "null":
// ghinstallation marshals its nil token options when it asks for an
// installation token, and GitHub's OpenAPI description wants an object there.
type nullBodyFix struct{ next http.RoundTripper }

func (n nullBodyFix) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.ContentLength > 0 && r.ContentLength <= 8 && r.GetBody != nil && strings.HasSuffix(r.URL.Path, "/access_tokens") {
		if b, err := r.GetBody(); err == nil {
			var buf [8]byte
			k, _ := io.ReadFull(b, buf[:])
			_ = b.Close()
			if strings.TrimSpace(string(buf[:k])) == "null" {
				r = r.Clone(r.Context())
				r.Body = io.NopCloser(strings.NewReader("{}"))
				r.ContentLength = 2
				r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("{}")), nil }
			}
		}
	}
	return n.next.RoundTrip(r)
}

// v4URL derives the GraphQL URL from the REST one: api.github.com/graphql, or
// <host>/api/graphql on GitHub Enterprise.
func v4URL(v3 string) string {
	v3 = strings.TrimSuffix(v3, "/")
	if strings.HasSuffix(v3, "/api/v3") {
		return strings.TrimSuffix(v3, "/v3") + "/graphql"
	}
	return v3 + "/graphql"
}

// startBus starts the embedded server if there is to be one, connects and
// ensures the streams and buckets.
func (s *Server) startBus() error {
	cfg := s.cfg.NATS
	s.ncClosed = make(chan struct{})
	nopts := []nats.Option{
		nats.Name("adbot-server " + version.String()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// Publishing while disconnected fails at once instead of buffering: the
		// webhook answers 503 and the sweeper brings the delivery back.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn().Err(err).Msg("nats disconnected")
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(s.ncClosed) }),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info().Str(LogKeyURL, nc.ConnectedUrlRedacted()).Msg("nats reconnected")
		}),
	}
	url := cfg.URL
	if url == "" {
		port := cfg.Embedded.Port
		if port == -1 {
			port = natsserver.RANDOM_PORT
		}
		ns, err := natsserver.NewServer(&natsserver.Options{
			ServerName:    "adbot",
			Host:          cfg.Embedded.Host,
			Port:          port,
			Authorization: cfg.Embedded.Token,
			JetStream:     true,
			StoreDir:      filepath.Join(s.cfg.DataDir, "jetstream"),
			NoSigs:        true,
		})
		if err != nil {
			return fmt.Errorf("embedded nats-server: %w", err)
		}
		fatal := make(chan string, 1)
		ns.SetLoggerV2(natsLogger{s.log.With().Str(LogKeyComponent, "nats-server").Logger(), fatal}, false, false, false)
		ns.Start()
		if err := waitReady(ns, fatal, s.cfg.NATS.ConnectTimeout); err != nil {
			ns.Shutdown()
			return fmt.Errorf("embedded nats-server on %s:%d: %w", cfg.Embedded.Host, cfg.Embedded.Port, err)
		}
		if cfg.Embedded.Token == "" && !isLoopback(cfg.Embedded.Host) {
			s.log.Warn().Str(LogKeyAddr, ns.Addr().String()).Msg("embedded nats-server accepts clients without a token; set ADBOT_NATS_TOKEN")
		}
		s.ns = ns
		url = ns.ClientURL()
		nopts = append(nopts, nats.InProcessServer(ns))
		if cfg.Embedded.Token != "" {
			nopts = append(nopts, nats.Token(cfg.Embedded.Token))
		}
	}
	if cfg.Creds != "" {
		nopts = append(nopts, nats.UserCredentials(cfg.Creds))
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return fmt.Errorf("connect to nats %s: %w", redactURL(url), err)
	}
	s.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.NATS.ConnectTimeout)
	defer cancel()
	res, err := bus.Ensure(ctx, js, bus.Options{Replicas: cfg.Replicas})
	if err != nil {
		return err
	}
	s.res = res
	s.ready.Store(true)
	return nil
}

// waitReady waits until ns accepts clients, for at most timeout, and gives up
// at once when the server reports a fatal error.
func waitReady(ns *natsserver.Server, fatal <-chan string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if ns.ReadyForConnections(DefaultNATSReadyPoll) {
			return nil
		}
		select {
		case msg := <-fatal:
			return errors.New(msg)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s", timeout)
		}
	}
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// redactURL drops credentials from a NATS URL list for error messages.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "REDACTED" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// Handler is the server's HTTP handler: webhook, health, readiness, metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// Bus is the server's NATS connection and JetStream resources.
func (s *Server) Bus() (*nats.Conn, *bus.Resources) { return s.nc, s.res }

// NATSURL is the embedded server's client URL for runners, or the configured external URL.
func (s *Server) NATSURL() string {
	if s.ns != nil {
		return s.ns.ClientURL()
	}
	return s.cfg.NATS.URL
}

// Clients is the GitHub client creator the server uses.
func (s *Server) Clients() githubapp.ClientCreator { return s.clients }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(WebhookRoute, s.webhook())
	mux.HandleFunc("GET "+HealthRoute, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+ReadyRoute, s.readyz)
	if s.jobs != nil {
		mux.Handle(jobpage.Route, s.jobs.Handler())
		mux.Handle(jobpage.Route+"/", s.jobs.Handler())
	}
	var h http.Handler = mux
	for _, mw := range s.middleware {
		h = mw(h)
	}
	return h
}

// MetricsHandler serves /metrics (Prometheus text), for the separate metrics listener.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsRoute, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return mux
}

// readyz answers 200 only when NATS is connected and the command stream answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.checkReady(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) checkReady(ctx context.Context) error {
	if !s.ready.Load() || s.res == nil {
		return errors.New("bus not set up")
	}
	if !s.serving.Load() {
		return errors.New("not serving (starting or stopping)")
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats %s", strings.ToLower(st.String()))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.res.Commands.Info(ctx); err != nil {
		return fmt.Errorf("stream %s: %w", bus.CommandStream, err)
	}
	return nil
}

// Run listens on the configured address and serves until ctx is cancelled.
func (s *Server) Run(ctx context.Context) error {
	addr := net.JoinHostPort(s.cfg.Server.Address, strconv.Itoa(s.cfg.Server.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Close()
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves HTTP on ln and runs the command workers (and their outbox
// relay), the token broker and the redelivery sweeper until ctx is cancelled
// or one of them fails; then it shuts everything down gracefully and returns
// the first error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.Close()
	log := zerolog.Ctx(ctx)
	if log.GetLevel() == zerolog.Disabled {
		log = &s.log
	}
	ctx = log.WithContext(ctx)
	g, ctx := newGroup(ctx)

	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.Server.ReadTimeout,
		WriteTimeout:      s.cfg.Server.WriteTimeout,
		IdleTimeout:       s.cfg.Server.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		// In-flight requests outlive ctx: shutdown lets them finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	g.Go("http", func() error {
		log.Info().Str(LogKeyAddr, ln.Addr().String()).Str("nats", redactURL(s.NATSURL())).Bool("dry_run", s.dryRun).Msg("adbot server listening")
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go("http-shutdown", func() error {
		<-ctx.Done()
		s.serving.Store(false) // readyz says no while in-flight requests finish
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Server.ShutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
			return fmt.Errorf("http shutdown: %w", err)
		}
		return nil
	})

	if addr := s.cfg.Server.MetricsAddress; addr != "off" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			err = g.Abort(fmt.Errorf("metrics listener on %s: %w", addr, err))
			_ = ln.Close()
			return err
		}
		ms := &http.Server{Handler: s.MetricsHandler(), ReadHeaderTimeout: s.cfg.Server.ReadHeaderTimeout, WriteTimeout: s.cfg.Server.WriteTimeout}
		g.Go("metrics", func() error {
			if err := ms.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics server: %w", err)
			}
			return nil
		})
		g.Go("metrics-shutdown", func() error {
			<-ctx.Done()
			return ms.Close()
		})
	}

	sub, err := s.startTokenBroker(ctx)
	if err != nil {
		return g.Abort(err)
	}
	g.Go("token-broker", func() error {
		<-ctx.Done()
		return sub.Drain()
	})

	if !s.noWorker {
		w, err := s.newWorker()
		if err != nil {
			return g.Abort(err)
		}
		g.Go("command-worker", func() error { return w.Run(ctx) })
		g.Go("status-writer", func() error { return w.WatchStatus(ctx) })
		g.Go("outbox-relay", func() error { return s.relayOutboxes(ctx) })
	}
	if !s.cfg.Sweeper.Disabled {
		sw, err := s.newSweeper()
		if err != nil {
			return g.Abort(err)
		}
		g.Go("sweeper", func() error { return sw.Run(ctx) })
	}
	if s.jobs != nil {
		g.Go("job-page", func() error { return s.jobs.Run(ctx) })
	}
	for i, f := range s.extra {
		g.Go("extra-"+strconv.Itoa(i), func() error { return f(ctx, s) })
	}
	s.serving.Store(true)
	err = g.Wait()
	s.serving.Store(false)
	log.Info().Err(err).Msg("adbot server stopped")
	return err
}

// Close releases the NATS connection and the embedded server. Serve calls it
// on return; call it yourself only for a Server that is never served.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.ready.Store(false)
		if s.nc != nil {
			// Drain is asynchronous; wait (bounded) for it before the server goes.
			if err := s.nc.Drain(); err == nil {
				t := time.NewTimer(5 * time.Second)
				select {
				case <-s.ncClosed:
				case <-t.C:
				}
				t.Stop()
			}
			s.nc.Close()
		}
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
	})
}

// natsLogger sends the embedded nats-server's log through zerolog.
// natsLogger routes the embedded nats-server's log through zerolog. A fatal
// message (a port already in use, say) is also handed to fatal, so start-up
// fails at once with the reason instead of waiting out its timeout.
type natsLogger struct {
	l     zerolog.Logger
	fatal chan<- string
}

func (n natsLogger) Noticef(f string, v ...any) { n.l.Debug().Msgf(f, v...) }
func (n natsLogger) Warnf(f string, v ...any)   { n.l.Warn().Msgf(f, v...) }
func (n natsLogger) Fatalf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	n.l.Error().Msg(msg)
	if n.fatal != nil {
		select {
		case n.fatal <- msg:
		default:
		}
	}
}
func (n natsLogger) Errorf(f string, v ...any) { n.l.Error().Msgf(f, v...) }
func (n natsLogger) Debugf(f string, v ...any) { n.l.Debug().Msgf(f, v...) }
func (n natsLogger) Tracef(f string, v ...any) { n.l.Trace().Msgf(f, v...) }
