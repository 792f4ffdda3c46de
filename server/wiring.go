package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/handlers"
	"github.com/nvidia/adbot/jobs"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/runners"
)

// This file connects the server to the packages that do the work: handlers/
// (events to commands), jobs/ (the command worker) and runners/ (the dev
// runner). Nothing else in server/ knows them.

// worker is the command worker: it consumes adbot.commands until ctx ends.
type worker interface {
	Run(ctx context.Context) error
}

// eventHandlers builds the webhook's event handlers.
func (s *Server) eventHandlers() ([]githubapp.EventHandler, error) {
	return handlers.New(handlers.Deps{
		TriggerLabel: s.cfg.TriggerLabel,
		AppID:        s.cfg.GitHub.AppID,
		BotLogin:     s.botName,
	}.FromResources(s.res)), nil
}

// botLogin asks GitHub for the App's slug: its comments are signed
// "<slug>[bot]". Without an answer the App id alone identifies its events.
func (s *Server) botLogin() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.clients.NewAppClient()
	if err != nil {
		s.log.Warn().Err(err).Msg("app client: the App's own events are recognised by its id only")
		return ""
	}
	app, _, err := c.Apps.Get(ctx, "")
	if err != nil || app.GetSlug() == "" {
		s.log.Warn().Err(err).Msg("get the App: its own events are recognised by its id only")
		return ""
	}
	return app.GetSlug() + "[bot]"
}

// newWorker builds cfg.Workers command workers sharing the durable consumer:
// each carries out one command at a time, so several keep a slow GitHub or
// Hub answer from holding up the rest.
func (s *Server) newWorker() (worker, error) {
	hubClient := &hub.Client{
		Endpoint: s.cfg.Hub.Endpoint,
		Token:    s.cfg.Hub.Token,
		HTTP:     &http.Client{Timeout: hub.DefaultTimeout, Transport: newTransport()},
	}
	var ws workers
	for range max(s.cfg.Workers, 1) {
		ws = append(ws, jobs.NewWorker(jobs.WorkerDeps{
			Clients:      s.clients,
			Bus:          s.res,
			Hub:          hubClient,
			BotName:      strings.TrimSuffix(s.botName, "[bot]"),
			TriggerLabel: s.cfg.TriggerLabel,
		}))
	}
	return ws, nil
}

// workers runs several workers and returns when all have.
type workers []*jobs.Worker

func (ws workers) Run(ctx context.Context) error {
	g, ctx := newGroup(ctx)
	for i, w := range ws {
		g.Go("command-worker-"+strconv.Itoa(i), func() error { return w.Run(ctx) })
	}
	return g.Wait()
}

// localRunner is adbot dev's in-process runner: the runners package on the
// server's own NATS connection. When it cannot run here (no TensorRT-LLM
// mirror, no GPUs), it says so and the rest of dev keeps serving.
func localRunner() func(ctx context.Context, s *Server) error {
	return func(ctx context.Context, s *Server) error {
		log := zerolog.Ctx(ctx).With().Str(LogKeyComponent, "local-runner").Logger()
		cfg, err := runners.ConfigFromEnv()
		if err != nil {
			return fmt.Errorf("local runner: %w", err)
		}
		if cfg.DataDir == "" {
			cfg.DataDir = filepath.Join(s.cfg.DataDir, "runner")
		}
		if cfg.GitHubAPIURL == "" {
			cfg.GitHubAPIURL = s.cfg.GitHub.V3APIURL
		}
		deps := runners.Deps{Conn: s.nc}
		if d, ok := s.clients.(*dryRunClientCreator); ok {
			deps.HTTP = &http.Client{Transport: d.rt, Timeout: DefaultGitHubTimeout}
		}
		r, err := runners.New(cfg, deps)
		if err == nil {
			err = r.Run(log.WithContext(ctx))
		}
		if err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("no runner capacity: the local runner stopped; cycles wait on the stream for another runner")
			<-ctx.Done()
		}
		return nil
	}
}
