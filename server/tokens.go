package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-github/v62/github"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// tokenQueue is the queue group of the token broker: with several servers,
// each request is answered once.
const tokenQueue = "adbot-server"

// grantable are the permissions a runner may ask for, each at most "write".
var grantable = map[string]bool{"contents": true, "pull_requests": true, "issues": true, "checks": true}

// errRefused marks a request the broker refuses (as opposed to one it failed).
var errRefused = errors.New("refused")

// appTokenClient mints installation tokens. *github.AppsService satisfies it.
type appTokenClient interface {
	CreateInstallationToken(ctx context.Context, id int64, opts *github.InstallationTokenOptions) (*github.InstallationToken, *github.Response, error)
}

// tokenBroker answers runners' TokenRequests: a token scoped to the job's one
// repository and the asked permissions, for the runner holding the job's lease.
type tokenBroker struct {
	res  *bus.Resources
	apps func() (appTokenClient, error)
}

func (s *Server) startTokenBroker(ctx context.Context) (*nats.Subscription, error) {
	b := &tokenBroker{res: s.res, apps: func() (appTokenClient, error) {
		c, err := s.clients.NewAppClient()
		if err != nil {
			return nil, fmt.Errorf("app client: %w", err)
		}
		return c.Apps, nil
	}}
	log := zerolog.Ctx(ctx).With().Str(LogKeyComponent, "token-broker").Logger()
	sub, err := s.nc.QueueSubscribe(bus.TokenSubject, tokenQueue, func(m *nats.Msg) {
		rctx, cancel := context.WithTimeout(ctx, DefaultTokenTimeout)
		defer cancel()
		reply, req, err := b.answer(rctx, m.Data)
		l := log.With().Str(bus.LogKeyJob, req.JobKey).Str(LogKeyRunner, req.Runner).Logger()
		switch {
		case err == nil:
			s.metrics.tokens.WithLabelValues("granted").Inc()
			l.Info().Strs("permissions", permNames(req.Permissions)).Msg("installation token granted")
		case errors.Is(err, errRefused):
			s.metrics.tokens.WithLabelValues("refused").Inc()
			l.Warn().Err(err).Msg("installation token refused")
		default:
			s.metrics.tokens.WithLabelValues("error").Inc()
			l.Error().Err(err).Msg("installation token failed")
		}
		b, merr := json.Marshal(reply)
		if merr != nil {
			return
		}
		if err := m.Respond(b); err != nil {
			l.Warn().Err(err).Msg("answer token request")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", bus.TokenSubject, err)
	}
	return sub, nil
}

func permNames(p map[string]string) []string {
	out := make([]string, 0, len(p))
	for k, v := range p {
		out = append(out, k+":"+v)
	}
	sort.Strings(out)
	return out
}

// answer decides one request. The reply carries the token or the reason for
// refusing; the returned error (wrapping errRefused for a refusal) is for
// logs and metrics and never holds the token.
func (b *tokenBroker) answer(ctx context.Context, data []byte) (bus.TokenReply, bus.TokenRequest, error) {
	var req bus.TokenRequest
	fail := func(err error) (bus.TokenReply, bus.TokenRequest, error) {
		return bus.TokenReply{Error: err.Error()}, req, err
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return fail(fmt.Errorf("%w: token request does not decode: %v", errRefused, err))
	}
	if req.JobKey == "" || req.Runner == "" {
		return fail(fmt.Errorf("%w: token request names no job or no runner", errRefused))
	}
	if !bus.ValidJobKey(req.JobKey) {
		// A key goes into a KV request's subject: an unbounded one would
		// drop the server's connection.
		bad := req.JobKey
		req.JobKey = bus.Token(bad, false)
		return fail(fmt.Errorf("%w: token request names no job key (%d bytes)", errRefused, len(bad)))
	}
	perms, err := tokenPermissions(req.Permissions)
	if err != nil {
		return fail(err)
	}
	job, _, err := bus.GetJob(ctx, b.res.Jobs, req.JobKey)
	if errors.Is(err, bus.ErrNoJob) {
		return fail(fmt.Errorf("%w: no job %s", errRefused, req.JobKey))
	} else if err != nil {
		return fail(err)
	}
	e, err := b.res.Leases.Get(ctx, req.JobKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return fail(fmt.Errorf("%w: nobody holds the lease on job %s", errRefused, req.JobKey))
	} else if err != nil {
		return fail(fmt.Errorf("read lease of job %s: %w", req.JobKey, err))
	}
	var lease bus.Lease
	if err := json.Unmarshal(e.Value(), &lease); err != nil {
		return fail(fmt.Errorf("decode lease of job %s: %w", req.JobKey, err))
	}
	if lease.Runner != req.Runner {
		return fail(fmt.Errorf("%w: runner %q does not hold the lease on job %s", errRefused, req.Runner, req.JobKey))
	}
	if !bus.LeaseProven(lease, req.Proof) {
		return fail(fmt.Errorf("%w: runner %q did not prove it holds the lease on job %s", errRefused, req.Runner, req.JobKey))
	}
	if job.InstallationID == 0 || job.Repo == "" {
		return fail(fmt.Errorf("%w: job %s has no installation or repository", errRefused, req.JobKey))
	}
	apps, err := b.apps()
	if err != nil {
		return fail(err)
	}
	tok, _, err := apps.CreateInstallationToken(ctx, job.InstallationID, &github.InstallationTokenOptions{
		Repositories: []string{job.Repo},
		Permissions:  perms,
	})
	if err != nil {
		return fail(fmt.Errorf("create installation token for %s/%s: %w", job.Owner, job.Repo, err))
	}
	return bus.TokenReply{Token: tok.GetToken(), Expires: tok.GetExpiresAt().Time}, req, nil
}

// tokenPermissions checks asked permissions against the allow-list and
// converts them; it refuses an empty set, unknown names and levels above write.
func tokenPermissions(asked map[string]string) (*github.InstallationPermissions, error) {
	if len(asked) == 0 {
		return nil, fmt.Errorf("%w: no permissions asked for", errRefused)
	}
	p := &github.InstallationPermissions{}
	for name, level := range asked {
		if !grantable[name] {
			return nil, fmt.Errorf("%w: permission %q is not grantable (only contents, pull_requests, issues, checks)", errRefused, name)
		}
		if level != "read" && level != "write" {
			return nil, fmt.Errorf("%w: permission %s:%q is not read or write", errRefused, name, level)
		}
		l := strings.Clone(level)
		switch name {
		case "contents":
			p.Contents = &l
		case "pull_requests":
			p.PullRequests = &l
		case "issues":
			p.Issues = &l
		case "checks":
			p.Checks = &l
		}
	}
	return p, nil
}
