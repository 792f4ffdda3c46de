package handlers

import (
	"context"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/nvidia/adbot/bus"
)

// PullRequestReviewComment turns a line comment on a job's pull request into
// feedback (with its file and line), or into the command it holds.
type PullRequestReviewComment struct{ *base }

// Handles implements githubapp.EventHandler.
func (h *PullRequestReviewComment) Handles() []string {
	return []string{"pull_request_review_comment"}
}

// Handle implements githubapp.EventHandler.
func (h *PullRequestReviewComment) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var e github.PullRequestReviewCommentEvent
	if err := decode(eventType, payload, &e); err != nil {
		return err
	}
	pr := e.GetPullRequest()
	ctx, _ = githubapp.PreparePRContext(ctx, e.GetInstallation().GetID(), e.GetRepo(), pr.GetNumber())
	comment := e.GetComment()
	if why := h.admit(e.GetRepo(), e.GetAction(), "created", e.GetSender(), viaApp(payload, "comment"), comment.GetBody()); why != "" {
		return ignore(ctx, why)
	}
	if err := check(eventType, comment != nil, RefuseNoComment, e.GetRepo(), 1, e.GetSender(), e.GetInstallation().GetID()); err != nil {
		return err
	}
	if err := check(eventType, pr != nil, RefuseNoPullRequest, e.GetRepo(), pr.GetNumber(), e.GetSender(), e.GetInstallation().GetID()); err != nil {
		return err
	}
	c := h.newCommand(bus.CmdFeedback, "pull_request_review_comment.created", deliveryID, e.GetInstallation().GetID(),
		e.GetRepo(), pr.GetNumber(), true, e.GetSender(), comment.GetAuthorAssociation())
	c.ReviewCommentID = comment.GetID()
	p := ParseComment(comment.GetBody())
	if answered(p.Kind) {
		c.Kind, c.Reason = p.Kind, p.Unknown
		return h.publish(ctx, c)
	}
	if ok, err := h.hasJob(ctx, c); !ok {
		return err
	}
	// A closing phrase on a line of the diff is a remark about that line, not
	// the end of the job: it stays feedback.
	line := comment.GetLine()
	if line == 0 {
		line = comment.GetOriginalLine()
	}
	c.Feedback = []bus.Feedback{{
		Source:     "review_comment",
		ID:         comment.GetID(),
		Author:     comment.GetUser().GetLogin(),
		Body:       comment.GetBody(),
		Path:       comment.GetPath(),
		Line:       line,
		URL:        comment.GetHTMLURL(),
		DeliveryID: deliveryID,
	}}
	return h.publish(ctx, c)
}

var _ githubapp.EventHandler = (*PullRequestReviewComment)(nil)
