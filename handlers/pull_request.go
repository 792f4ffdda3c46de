package handlers

import (
	"context"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/nvidia/adbot/bus"
)

// PullRequest ends a job when its pull request is closed, merged or not.
// Closing is a fact, not a request: the worker does not authorize it.
type PullRequest struct{ *base }

// Handles implements githubapp.EventHandler.
func (h *PullRequest) Handles() []string { return []string{"pull_request"} }

// Handle implements githubapp.EventHandler.
func (h *PullRequest) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var e github.PullRequestEvent
	if err := decode(eventType, payload, &e); err != nil {
		return err
	}
	pr := e.GetPullRequest()
	ctx, _ = githubapp.PreparePRContext(ctx, e.GetInstallation().GetID(), e.GetRepo(), pr.GetNumber())
	if !repoOK(e.GetRepo()) {
		return ignore(ctx, ReasonNoRepository)
	}
	if e.GetAction() != "closed" {
		return ignore(ctx, ReasonAction)
	}
	if h.sender(e.GetSender(), nil) == ReasonOwnEvent {
		// The bot closes a pull request only when it ended the job itself.
		return ignore(ctx, ReasonOwnEvent)
	}
	if err := check(eventType, pr != nil, RefuseNoPullRequest, e.GetRepo(), pr.GetNumber(), e.GetSender(), e.GetInstallation().GetID()); err != nil {
		return err
	}
	c := h.newCommand(bus.CmdEnd, "pull_request.closed", deliveryID, e.GetInstallation().GetID(),
		e.GetRepo(), pr.GetNumber(), true, e.GetSender(), "")
	if ok, err := h.hasJob(ctx, c); !ok {
		return err
	}
	c.Reason = "closed"
	if pr.GetMerged() {
		c.Reason = "merged"
	}
	c.CommitSHA = pr.GetHead().GetSHA()
	return h.publish(ctx, c)
}

var _ githubapp.EventHandler = (*PullRequest)(nil)
