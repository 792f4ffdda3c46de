package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"
)

// deniedAssociations are author_association values that can never come with
// write permission: they deny without asking GitHub.
var deniedAssociations = map[string]bool{
	"NONE":                   true,
	"FIRST_TIMER":            true,
	"FIRST_TIME_CONTRIBUTOR": true,
	"MANNEQUIN":              true,
	"CONTRIBUTOR":            true,
}

// writePermissions are the collaborator permissions that may steer adbot
// (GitHub reports maintain as write; both are accepted).
var writePermissions = map[string]bool{"admin": true, "maintain": true, "write": true}

type permEntry struct {
	perm string
	at   time.Time
}

// permCache remembers collaborator permissions for a few minutes.
type permCache struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]permEntry
}

func (p *permCache) get(key string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[key]
	if !ok || p.now().Sub(e.at) > p.ttl {
		return "", false
	}
	return e.perm, true
}

func (p *permCache) put(key, perm string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for k, e := range p.m { // keep the map small
		if now.Sub(e.at) > p.ttl {
			delete(p.m, k)
		}
	}
	p.m[key] = permEntry{perm, now}
}

// authorized reports whether user may trigger or steer work on owner/repo:
// write, maintain or admin permission, by GitHub's collaborator-permission
// endpoint (cached). assoc, the event's author_association, only
// short-circuits to a denial.
func (w *Worker) authorized(ctx context.Context, gh *github.Client, owner, repo, user, assoc string) (bool, error) {
	log := zerolog.Ctx(ctx)
	if user == "" {
		return false, nil
	}
	if deniedAssociations[strings.ToUpper(assoc)] {
		log.Info().Str("association", assoc).Msg("Not authorized (author association)")
		return false, nil
	}
	key := strings.ToLower(owner + "/" + repo + "/" + user)
	perm, ok := w.perms.get(key)
	if !ok {
		p, _, err := gh.Repositories.GetPermissionLevel(ctx, owner, repo, user)
		var ge *github.ErrorResponse
		switch {
		case errors.As(err, &ge) && ge.Response != nil && ge.Response.StatusCode == http.StatusNotFound:
			perm = "none"
		case err != nil:
			return false, fmt.Errorf("permission of %s on %s/%s: %w", user, owner, repo, err)
		default:
			perm = p.GetPermission()
		}
		w.perms.put(key, perm)
	}
	ok = writePermissions[perm]
	if !ok {
		log.Info().Str("permission", perm).Msg("Not authorized")
	}
	return ok, nil
}
