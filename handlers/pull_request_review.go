package handlers

import (
	"context"
	"strings"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/nvidia/adbot/bus"
)

// PullRequestReview turns a review submitted on a job's pull request into
// end (approved: the worker checks that CommitSHA is the head it last tested)
// or feedback (changes_requested, commented: the review body; its line
// comments arrive as pull_request_review_comment events, and the worker lets
// a burst of feedback settle so a review and its comments make one cycle).
type PullRequestReview struct{ *base }

// Handles implements githubapp.EventHandler.
func (h *PullRequestReview) Handles() []string { return []string{"pull_request_review"} }

// Handle implements githubapp.EventHandler.
func (h *PullRequestReview) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var e github.PullRequestReviewEvent
	if err := decode(eventType, payload, &e); err != nil {
		return err
	}
	pr := e.GetPullRequest()
	ctx, _ = githubapp.PreparePRContext(ctx, e.GetInstallation().GetID(), e.GetRepo(), pr.GetNumber())
	review := e.GetReview()
	if why := h.admit(e.GetRepo(), e.GetAction(), "submitted", e.GetSender(), nil, review.GetBody()); why != "" {
		return ignore(ctx, why)
	}
	if err := check(eventType, review != nil, RefuseNoReview, e.GetRepo(), 1, e.GetSender(), e.GetInstallation().GetID()); err != nil {
		return err
	}
	if err := check(eventType, pr != nil, RefuseNoPullRequest, e.GetRepo(), pr.GetNumber(), e.GetSender(), e.GetInstallation().GetID()); err != nil {
		return err
	}
	state := strings.ToLower(review.GetState())
	body := strings.TrimSpace(review.GetBody())
	p := ParseComment(body)
	switch state {
	case "approved", "changes_requested", "commented":
	default:
		return ignore(ctx, ReasonAction)
	}
	if state == "commented" && body == "" {
		return ignore(ctx, ReasonEmptyReview)
	}
	c := h.newCommand(bus.CmdFeedback, "pull_request_review.submitted", deliveryID, e.GetInstallation().GetID(),
		e.GetRepo(), pr.GetNumber(), true, e.GetSender(), review.GetAuthorAssociation())
	if answered(p.Kind) {
		c.Kind, c.Reason = p.Kind, p.Unknown
		return h.publish(ctx, c)
	}
	if ok, err := h.hasJob(ctx, c); !ok {
		return err
	}
	if state == "approved" {
		c.Kind, c.Reason, c.CommitSHA = bus.CmdEnd, "approved", review.GetCommitID()
		return h.publish(ctx, c)
	}
	if state == "commented" && p.Kind == bus.CmdEnd {
		// A closing phrase as a comment review ends the job like the same
		// phrase as a comment would.
		c.Kind, c.Reason = bus.CmdEnd, "comment"
		return h.publish(ctx, c)
	}
	if body == "" {
		body = "Changes requested (see the review's comments)."
	}
	c.Feedback = []bus.Feedback{{
		Source:     "review",
		ID:         review.GetID(),
		Author:     review.GetUser().GetLogin(),
		Body:       body,
		URL:        review.GetHTMLURL(),
		DeliveryID: deliveryID,
	}}
	return h.publish(ctx, c)
}

var _ githubapp.EventHandler = (*PullRequestReview)(nil)
