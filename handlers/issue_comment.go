package handlers

import (
	"context"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/nvidia/adbot/bus"
)

// IssueComment turns issue_comment.created into commands: "/onboard
// proceed|cancel|retry|status|help" anywhere, "/onboard <model-id>" on an
// issue, a closing phrase on a job's issue or pull request (end), and any
// other remark on a job's pull request (feedback).
type IssueComment struct{ *base }

// Handles implements githubapp.EventHandler.
func (h *IssueComment) Handles() []string { return []string{"issue_comment"} }

// Handle implements githubapp.EventHandler.
func (h *IssueComment) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var e github.IssueCommentEvent
	if err := decode(eventType, payload, &e); err != nil {
		return err
	}
	ctx, _ = githubapp.PrepareRepoContext(ctx, e.GetInstallation().GetID(), e.GetRepo())
	comment := e.GetComment()
	if why := h.admit(e.GetRepo(), e.GetAction(), "created", e.GetSender(), viaApp(payload, "comment"), comment.GetBody()); why != "" {
		return ignore(ctx, why)
	}
	issue := e.GetIssue()
	if err := check(eventType, comment != nil, RefuseNoComment, e.GetRepo(), 1, e.GetSender(), e.GetInstallation().GetID()); err != nil {
		return err
	}
	if err := check(eventType, issue != nil, RefuseNoIssue, e.GetRepo(), issue.GetNumber(), e.GetSender(), e.GetInstallation().GetID()); err != nil {
		return err
	}
	isPR := issue.IsPullRequest()
	p := ParseComment(comment.GetBody())
	if p.Kind == bus.CmdOnboard && isPR {
		p = Parsed{Kind: bus.CmdHelp, Unknown: clip(p.ModelID, 40)}
	}
	c := h.newCommand(p.Kind, "issue_comment.created", deliveryID, e.GetInstallation().GetID(),
		e.GetRepo(), issue.GetNumber(), isPR, e.GetSender(), comment.GetAuthorAssociation())
	c.CommentID = comment.GetID()
	switch {
	case p.Kind == bus.CmdOnboard:
		c.ModelID = p.ModelID
		return h.publish(ctx, c)
	case answered(p.Kind):
		// Commands go to the worker even without a job: it answers.
		c.Reason = p.Unknown
		return h.publish(ctx, c)
	}
	if ok, err := h.hasJob(ctx, c); !ok {
		return err
	}
	if p.Kind == bus.CmdEnd {
		c.Reason = "comment"
		return h.publish(ctx, c)
	}
	if !isPR {
		return ignore(ctx, ReasonIssueRemark)
	}
	c.Kind = bus.CmdFeedback
	c.Feedback = []bus.Feedback{{
		Source:     "issue_comment",
		ID:         comment.GetID(),
		Author:     comment.GetUser().GetLogin(),
		Body:       comment.GetBody(),
		URL:        comment.GetHTMLURL(),
		DeliveryID: deliveryID,
	}}
	return h.publish(ctx, c)
}

var _ githubapp.EventHandler = (*IssueComment)(nil)
