package handlers

import (
	"context"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"
)

// Installation logs installations of the App being created, changed or
// removed; they need no command.
type Installation struct{ *base }

// Handles implements githubapp.EventHandler.
func (h *Installation) Handles() []string {
	return []string{"installation", "installation_repositories"}
}

// Handle implements githubapp.EventHandler.
func (h *Installation) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var e github.InstallationEvent
	if err := decode(eventType, payload, &e); err != nil {
		return err
	}
	inst := e.GetInstallation()
	zerolog.Ctx(ctx).Info().Int64(githubapp.LogKeyInstallationID, inst.GetID()).
		Str("account", inst.GetAccount().GetLogin()).Str("action", e.GetAction()).
		Int("repositories", len(e.Repositories)).Msg("App installation changed")
	return ignore(ctx, ReasonInstallation)
}

var _ githubapp.EventHandler = (*Installation)(nil)
