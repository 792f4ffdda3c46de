package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/handlers"
	"github.com/nvidia/adbot/jobs"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/runners"
	"github.com/nvidia/adbot/server/jobpage"
)

// This file connects the server to the packages that do the work: handlers/
// (events to commands), jobs/ (the command worker) and runners/ (the dev
// runner). Nothing else in server/ knows them.

// worker is the command worker: it consumes adbot.commands until ctx ends.
type worker interface {
	Run(ctx context.Context) error
	// WatchStatus keeps the status comments current as runners change
	// their jobs: the comments' one writer.
	WatchStatus(ctx context.Context) error
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

// newWorker builds the command worker: it carries out cfg.Workers commands
// at once, so that a slow GitHub or Hub answer does not hold up the rest, and
// they share one pull from the durable consumer, the permission cache and the
// queue figures shown in status comments.
func (s *Server) newWorker() (worker, error) {
	hubClient := &hub.Client{
		Endpoint: s.cfg.Hub.Endpoint,
		Token:    s.cfg.Hub.Token,
		HTTP:     &http.Client{Timeout: hub.DefaultTimeout, Transport: newTransport()},
	}
	return jobs.NewWorker(jobs.WorkerDeps{
		Clients:        s.clients,
		Bus:            s.res,
		Hub:            hubClient,
		BotName:        strings.TrimSuffix(s.botName, "[bot]"),
		TriggerLabel:   s.cfg.TriggerLabel,
		Concurrency:    max(s.cfg.Workers, 1),
		FeedbackSettle: feedbackSettle(s.cfg.FeedbackSettle),
	}), nil
}

// feedbackSettle turns the configured settle time into the worker's: there a
// zero means its default and a negative one sends remarks at once.
func feedbackSettle(d *time.Duration) time.Duration {
	switch {
	case d == nil:
		return DefaultFeedbackSettle
	case *d == 0:
		return -1
	}
	return *d
}

// localRunner is adbot dev's in-process runner: the runners package on the
// server's own NATS connection, its data under <data dir>/runner. It honours
// the runner's environment (ADBOT_TRTLLM_REMOTE, ADBOT_REPO_DIR, ADBOT_GPUS,
// ...); a configuration error (a bad ADBOT_GPUS) stops dev with it. When the
// runner cannot run here it says so and the rest of dev keeps serving; a
// mirror it cannot clone yet it tries again (see runners.Runner).
func localRunner(newWorkflow func() (runners.Workflow, error)) func(ctx context.Context, s *Server) error {
	return func(ctx context.Context, s *Server) error {
		log := zerolog.Ctx(ctx).With().Str(LogKeyComponent, "local-runner").Logger()
		cfg, err := runners.ConfigFromEnv()
		if err != nil {
			return fmt.Errorf("local runner: %w", err)
		}
		cfg = devRunnerConfig(cfg, s.cfg)
		if cfg.Remote == "" {
			log.Warn().Msg("ADBOT_TRTLLM_REMOTE unset: the local runner clones TensorRT-LLM from GitHub (gigabytes); point it at a local bare clone to skip that")
		}
		// The workflow reads its configuration now, after adbot dev --demo
		// has set the environment the local runner reads.
		wf, err := newWorkflow()
		if err != nil {
			return fmt.Errorf("local runner: %w", err)
		}
		deps := runners.Deps{Conn: s.nc, Workflow: wf, Metrics: s.reg}
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

// devRunnerConfig is the local runner's configuration: its data dir is the
// server's (absolute since DevCommand) plus "runner", so that the mirror
// and worktrees sit beside the JetStream store, never in it, and GitHub is
// the server's.
func devRunnerConfig(cfg runners.Config, sc Config) runners.Config {
	cfg.DataDir = filepath.Join(sc.DataDir, "runner")
	if cfg.GitHubAPIURL == "" {
		cfg.GitHubAPIURL = sc.GitHub.V3APIURL
	}
	return cfg
}

// jobPage builds the live job pages (nil when they are off).
func (s *Server) jobPage() (*jobpage.Page, error) {
	return jobpage.New(s.cfg.JobsPage, jobpage.Deps{
		Conn:   s.nc,
		Jobs:   s.res.Jobs,
		Logs:   s.res.Logs,
		WebURL: jobpage.WebURL(s.cfg.GitHub.V3APIURL),
		APIURL: s.cfg.GitHub.V3APIURL,
		HTTP:   &http.Client{Timeout: jobpage.DefaultOAuthTimeout, Transport: newTransport()},
	})
}
