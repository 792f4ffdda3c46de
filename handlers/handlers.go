// Package handlers turns GitHub webhook events into adbot commands.
//
// Each file handles one event (issues.go, issue_comment.go, ...). A handler
// decodes the payload, returns early with a debug line saying why for what it
// ignores (the App's own events, other bots, [AGENT] comments, remarks on
// issues and pull requests that hold no job, unhandled actions), and publishes
// a bus.Command on bus.CommandSubject with Nats-Msg-Id = the delivery id, so a
// delivery that arrives twice is one command. Nothing slow happens here: no
// GitHub or Hub call, no authorization (the command worker in jobs/ does that
// first); only a read of the job bucket to tell a job's pull request from any
// other.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// Log keys this package adds.
const (
	// LogKeyIgnored holds why an event was ignored.
	LogKeyIgnored = "ignored"
	// LogKeyCommand holds the kind of command an event became.
	LogKeyCommand = "command"
)

// Why an event was ignored: the value of LogKeyIgnored.
const (
	ReasonOwnEvent     = "the App's own event"
	ReasonOtherBot     = "sent by a bot"
	ReasonAgentComment = "comment written by the bot ([AGENT])"
	ReasonAction       = "action not handled"
	ReasonNoCommand    = "no onboard command in the issue"
	ReasonUnchanged    = "edit did not change the onboard command"
	ReasonOtherLabel   = "not the trigger label"
	ReasonNoJob        = "no job on this issue or pull request"
	ReasonIssueRemark  = "remark on a job's issue: feedback is taken on its pull request"
	ReasonEmptyReview  = "review without a body: its comments arrive as their own events"
	ReasonInstallation = "installation events carry no command"
	ReasonNoRepository = "no repository in the payload"
	ReasonPullRequest  = "issues event on a pull request: onboarding starts from an issue"
)

// PayloadError is a payload no command can be made of: an object the event
// must carry is null or missing, a number is not positive, the sender has no
// login, or a name is one GitHub could not have sent. Retrying will not
// help: the server answers 400 with Reason.
type PayloadError struct {
	// Event is the event type, e.g. "issues".
	Event string
	// Reason says what is wrong, for the 400 answer and the log.
	Reason string
}

func (e *PayloadError) Error() string { return e.Event + " payload: " + e.Reason }

// Why a payload is refused: the Reason of a PayloadError.
const (
	RefuseNoIssue       = "issue is null or missing"
	RefuseNoComment     = "comment is null or missing"
	RefuseNoReview      = "review is null or missing"
	RefuseNoPullRequest = "pull_request is null or missing"
	RefuseNumber        = "issue or pull request number is not positive"
	RefuseNoSender      = "sender is null or has no login"
	RefuseRepoName      = "repository owner or name is not one GitHub allows"
	RefuseInstallation  = "installation id is negative"
)

// ErrNotQueued marks a command that could not be published: the delivery
// must fail (the server answers 503) so that it is delivered again.
var ErrNotQueued = errors.New("command not queued")

// Publisher publishes to JetStream; jetstream.JetStream satisfies it.
type Publisher interface {
	Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Deps is what the handlers need.
type Deps struct {
	// Publisher takes the commands (bus.Resources.JS).
	Publisher Publisher
	// Jobs is the job bucket (bus.Resources.Jobs), read to find a job's pull request.
	Jobs bus.JobReader
	// TriggerLabel asks for onboarding when added to an issue (bus.DefaultTriggerLabel if empty).
	TriggerLabel string
	// AppID and BotLogin ("<slug>[bot]") identify the App's own events.
	AppID    int64
	BotLogin string
	// Now stamps commands (time.Now if nil).
	Now func() time.Time
}

// FromResources fills Publisher and Jobs from r.
func (d Deps) FromResources(r *bus.Resources) Deps {
	d.Publisher, d.Jobs = r.JS, r.Jobs
	return d
}

// New returns one handler per event adbot listens to, for go-githubapp's dispatcher.
func New(d Deps) []githubapp.EventHandler {
	if d.TriggerLabel == "" {
		d.TriggerLabel = bus.DefaultTriggerLabel
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	b := &base{d}
	return []githubapp.EventHandler{
		&Issues{b},
		&IssueComment{b},
		&PullRequestReview{b},
		&PullRequestReviewComment{b},
		&PullRequest{b},
		&Installation{b},
	}
}

// base holds what every handler shares.
type base struct{ Deps }

// ignore logs why an event needs nothing and returns nil.
func ignore(ctx context.Context, reason string) error {
	zerolog.Ctx(ctx).Info().Str(LogKeyIgnored, reason).Msg("Ignoring event")
	return nil
}

// sender classifies who caused an event: "" for a person, else a reason to ignore it.
func (b *base) sender(u *github.User, viaApp *appRef) string {
	if viaApp != nil && viaApp.ID != 0 && viaApp.ID == b.AppID {
		return ReasonOwnEvent
	}
	if !strings.EqualFold(u.GetType(), "Bot") {
		return ""
	}
	if b.BotLogin != "" && strings.EqualFold(u.GetLogin(), b.BotLogin) {
		return ReasonOwnEvent
	}
	return ReasonOtherBot
}

// appRef is the part of performed_via_github_app adbot reads (go-github v62
// does not decode it on comments).
type appRef struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
}

// viaApp reads <object>.performed_via_github_app from a payload.
func viaApp(payload []byte, object string) *appRef {
	var p map[string]json.RawMessage
	if json.Unmarshal(payload, &p) != nil {
		return nil
	}
	var o struct {
		Via *appRef `json:"performed_via_github_app"`
	}
	if json.Unmarshal(p[object], &o) != nil {
		return nil
	}
	return o.Via
}

// admit makes the checks that the comment-like events (issue_comment,
// pull_request_review, pull_request_review_comment) share, in this order:
// the payload names a repository, its action is want, a person sent it (not
// the App, whose comments may carry via, nor another bot), and the bot did
// not write body. It returns why to ignore the event, or "" to go on.
func (b *base) admit(repo *github.Repository, action, want string, sender *github.User, via *appRef, body string) string {
	if !repoOK(repo) {
		return ReasonNoRepository
	}
	if action != want {
		return ReasonAction
	}
	if why := b.sender(sender, via); why != "" {
		return why
	}
	if IsAgentComment(body) {
		return ReasonAgentComment
	}
	return ""
}

// answered reports whether kind is a command the worker answers with or
// without a job (proceed, cancel, retry, status, help): it is published as is.
func answered(kind bus.CommandKind) bool {
	switch kind {
	case bus.CmdProceed, bus.CmdCancel, bus.CmdRetry, bus.CmdStatus, bus.CmdHelp:
		return true
	}
	return false
}

// hasJob reports whether c's issue or pull request holds a job. When it does
// not, it logs why the event is ignored; when the lookup fails, it returns
// the error (wrapping ErrNotQueued), which the handler returns as is.
func (b *base) hasJob(ctx context.Context, c bus.Command) (bool, error) {
	if b.Jobs == nil {
		return false, fmt.Errorf("%w: handlers.Deps has no job bucket", ErrNotQueued)
	}
	j, err := bus.Find(ctx, b.Jobs, c.Owner, c.Repo, c.Issue, c.IsPR)
	if err != nil && !errors.Is(err, bus.ErrNoJob) {
		return false, fmt.Errorf("%w: %w", ErrNotQueued, err)
	}
	if j == nil {
		return false, ignore(ctx, ReasonNoJob)
	}
	return true, nil
}

// newCommand fills what every command carries.
func (b *base) newCommand(kind bus.CommandKind, event, deliveryID string, installation int64, repo *github.Repository, number int, isPR bool, actor *github.User, assoc string) bus.Command {
	return bus.Command{
		Kind:             kind,
		DeliveryID:       deliveryID,
		Event:            event,
		InstallationID:   installation,
		Owner:            repo.GetOwner().GetLogin(),
		Repo:             repo.GetName(),
		Issue:            number,
		IsPR:             isPR,
		Actor:            actor.GetLogin(),
		ActorAssociation: assoc,
		Received:         b.Now().UTC(),
	}
}

// publish puts c on the command stream, de-duplicated by its delivery id.
func (b *base) publish(ctx context.Context, c bus.Command) error {
	if b.Publisher == nil {
		return fmt.Errorf("publish %s command: %w: handlers.Deps has no publisher", c.Kind, ErrNotQueued)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode %s command: %w", c.Kind, err)
	}
	var opts []jetstream.PublishOpt
	if c.DeliveryID != "" {
		opts = append(opts, jetstream.WithMsgID(bus.MsgID(c.DeliveryID)))
	}
	ack, err := b.Publisher.Publish(ctx, bus.CommandSubject, data, opts...)
	if err != nil {
		return fmt.Errorf("publish %s command of delivery %s: %w: %w", c.Kind, c.DeliveryID, ErrNotQueued, err)
	}
	zerolog.Ctx(ctx).Info().Str(LogKeyCommand, string(c.Kind)).Bool("duplicate", ack.Duplicate).
		Str("actor", c.Actor).Int("number", c.Issue).Msg("Queued command")
	return nil
}

// decode unmarshals payload into v, naming the event on failure.
func decode(event string, payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("decode %s payload: %w", event, err)
	}
	return nil
}

// maxOwnerLen and maxRepoLen are GitHub's limits on an account login and a
// repository name.
const (
	maxOwnerLen = 39
	maxRepoLen  = 100
)

// check refuses a payload that cannot make a command (see PayloadError):
// object is false when the event's main object (issue, comment, review,
// pull request) is null or missing, and refuse then names it. It is called
// once the repository is known to be named (repoOK).
func check(event string, object bool, refuse string, repo *github.Repository, number int, sender *github.User, installation int64) error {
	var reason string
	switch {
	case !object:
		reason = refuse
	case number <= 0:
		reason = RefuseNumber
	case sender == nil || strings.TrimSpace(sender.GetLogin()) == "" || !bus.TokenOK(sender.GetLogin(), false) && !strings.HasSuffix(sender.GetLogin(), "[bot]"):
		reason = RefuseNoSender
	case !nameOK(repo.GetOwner().GetLogin(), maxOwnerLen, false) || !nameOK(repo.GetName(), maxRepoLen, true):
		reason = RefuseRepoName
	case installation < 0:
		reason = RefuseInstallation
	default:
		return nil
	}
	return &PayloadError{Event: event, Reason: reason}
}

// nameOK reports whether s is a login (dots false) or repository name (dots
// true) GitHub could have made: at most max characters of [A-Za-z0-9_-],
// and dots in a repository name.
func nameOK(s string, max int, dots bool) bool {
	return len(s) <= max && bus.TokenOK(s, dots)
}

// repoOK reports whether the payload named a repository.
func repoOK(r *github.Repository) bool {
	return r.GetName() != "" && r.GetOwner().GetLogin() != ""
}
