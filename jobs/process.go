package jobs

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// process carries out one command: authorization first, then 👀, then the
// command itself.
func (w *Worker) process(ctx context.Context, st *state) error {
	c := st.c
	if c.Owner == "" || c.Repo == "" || c.Issue <= 0 {
		return &permanentError{fmt.Errorf("command %s names no repository or issue", c.Kind)}
	}
	gh, err := w.installationClient(ctx, c)
	if err != nil {
		return err
	}
	st.gh = gh

	// A pull request being closed is a fact, not a request: nobody to authorize.
	fact := c.Kind == bus.CmdEnd && (c.Reason == "merged" || c.Reason == "closed")
	if !fact {
		ok, err := w.authorized(ctx, gh, c.Owner, c.Repo, c.Actor, c.ActorAssociation)
		if err != nil {
			return err
		}
		if !ok {
			return w.deny(ctx, st)
		}
		// A settling remark comes back once more; its first pass reacted.
		if !st.rec.Settling {
			if err := w.react(ctx, st); err != nil {
				return err
			}
		}
	}

	switch c.Kind {
	case bus.CmdOnboard:
		return w.onboard(ctx, st)
	case bus.CmdFeedback:
		return w.feedback(ctx, st)
	case bus.CmdProceed:
		return w.proceed(ctx, st)
	case bus.CmdCancel:
		return w.cancel(ctx, st)
	case bus.CmdRetry:
		return w.retry(ctx, st)
	case bus.CmdStatus:
		return w.status(ctx, st)
	case bus.CmdHelp:
		return st.reply(ctx, "help", w.helpText(c.Actor, c.Reason))
	case bus.CmdEnd:
		return w.end(ctx, st)
	}
	return &permanentError{fmt.Errorf("unknown command kind %q", c.Kind)}
}

// installationClient returns a client for the command's installation, asking
// GitHub for the repository's installation when the payload had none.
func (w *Worker) installationClient(ctx context.Context, c bus.Command) (*github.Client, error) {
	id := c.InstallationID
	if id == 0 {
		app, err := w.d.Clients.NewAppClient()
		if err != nil {
			return nil, fmt.Errorf("app client: %w", err)
		}
		inst, _, err := app.Apps.FindRepositoryInstallation(ctx, c.Owner, c.Repo)
		if err != nil {
			return nil, fmt.Errorf("find installation of %s/%s: %w", c.Owner, c.Repo, err)
		}
		id = inst.GetID()
	}
	gh, err := w.d.Clients.NewInstallationClient(id)
	if err != nil {
		return nil, fmt.Errorf("installation client %d: %w", id, err)
	}
	return gh, nil
}

// react puts 👀 on the comment that carried the command (an issue comment or
// a review's line comment), or on the issue that did. A comment deleted
// meanwhile is no reason to drop the command: only a failure worth retrying is
// returned.
func (w *Worker) react(ctx context.Context, st *state) error {
	c := st.c
	var err error
	switch {
	case c.ReviewCommentID != 0:
		_, _, err = st.gh.Reactions.CreatePullRequestCommentReaction(ctx, c.Owner, c.Repo, c.ReviewCommentID, "eyes")
		if err != nil {
			err = fmt.Errorf("react to review comment %d on %s/%s: %w", c.ReviewCommentID, c.Owner, c.Repo, err)
		}
	case c.CommentID != 0:
		_, _, err = st.gh.Reactions.CreateIssueCommentReaction(ctx, c.Owner, c.Repo, c.CommentID, "eyes")
		if err != nil {
			err = fmt.Errorf("react to comment %d on %s/%s: %w", c.CommentID, c.Owner, c.Repo, err)
		}
	case strings.HasPrefix(c.Event, "issues."):
		_, _, err = st.gh.Reactions.CreateIssueReaction(ctx, c.Owner, c.Repo, c.Issue, "eyes")
		if err != nil {
			err = fmt.Errorf("react to %s/%s#%d: %w", c.Owner, c.Repo, c.Issue, err)
		}
	}
	if err != nil {
		if ok, _ := Transient(err); ok {
			return err
		}
		zerolog.Ctx(ctx).Info().Err(err).Msg("Could not react; going on")
	}
	return nil
}
