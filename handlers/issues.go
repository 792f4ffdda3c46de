package handlers

import (
	"context"
	"strings"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/nvidia/adbot/bus"
)

// Issues turns issues.opened / edited ("onboard <model-id>" in the title or
// first body line) and issues.labeled (the trigger label, model id in the
// title) into onboard commands.
type Issues struct{ *base }

// Handles implements githubapp.EventHandler.
func (h *Issues) Handles() []string { return []string{"issues"} }

// Handle implements githubapp.EventHandler.
func (h *Issues) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var e github.IssuesEvent
	if err := decode(eventType, payload, &e); err != nil {
		return err
	}
	ctx, _ = githubapp.PrepareRepoContext(ctx, e.GetInstallation().GetID(), e.GetRepo())
	if !repoOK(e.GetRepo()) {
		return ignore(ctx, ReasonNoRepository)
	}
	if why := h.sender(e.GetSender(), viaApp(payload, "issue")); why != "" {
		return ignore(ctx, why)
	}
	issue := e.GetIssue()
	if err := check(eventType, issue != nil, RefuseNoIssue, e.GetRepo(), issue.GetNumber(), e.GetSender(), e.GetInstallation().GetID()); err != nil {
		return err
	}
	if issue.IsPullRequest() {
		// GitHub reports a pull request's labels and edits as
		// pull_request events; should one come as an issues event, it
		// must not start a job keyed by the pull request's number.
		return ignore(ctx, ReasonPullRequest)
	}
	var model string
	switch e.GetAction() {
	case "opened":
		id, ok := ParseIssue(issue.GetTitle(), issue.GetBody())
		if !ok {
			return ignore(ctx, ReasonNoCommand)
		}
		model = id
	case "edited":
		id, ok := ParseIssue(issue.GetTitle(), issue.GetBody())
		if !ok {
			return ignore(ctx, ReasonNoCommand)
		}
		// The edit must have changed the command: fixing a typo elsewhere in
		// an issue that already asked for this model is no new request.
		oldTitle, oldBody := issue.GetTitle(), issue.GetBody()
		if c := e.GetChanges(); c != nil {
			if c.GetTitle() != nil && c.GetTitle().From != nil {
				oldTitle = c.GetTitle().GetFrom()
			}
			if c.GetBody() != nil && c.GetBody().From != nil {
				oldBody = c.GetBody().GetFrom()
			}
		}
		if was, ok := ParseIssue(oldTitle, oldBody); ok && was == id {
			return ignore(ctx, ReasonUnchanged)
		}
		model = id
	case "labeled":
		if !strings.EqualFold(e.GetLabel().GetName(), h.TriggerLabel) {
			return ignore(ctx, ReasonOtherLabel)
		}
		// The title names the model, or else the body's first line holds
		// "onboard <model-id>" (an issue opened by someone without write
		// access, labeled by a maintainer). Neither gives an empty id:
		// after authorizing the labeler, the worker replies what to write.
		var ok bool
		if model, ok = ParseLabeledTitle(issue.GetTitle()); !ok {
			model, _ = ParseIssue("", issue.GetBody())
		}
	default:
		return ignore(ctx, ReasonAction)
	}
	assoc := ""
	if strings.EqualFold(issue.GetUser().GetLogin(), e.GetSender().GetLogin()) {
		assoc = issue.GetAuthorAssociation()
	}
	c := h.newCommand(bus.CmdOnboard, "issues."+e.GetAction(), deliveryID, e.GetInstallation().GetID(),
		e.GetRepo(), issue.GetNumber(), false, e.GetSender(), assoc)
	c.ModelID = model
	return h.publish(ctx, c)
}

var _ githubapp.EventHandler = (*Issues)(nil)
