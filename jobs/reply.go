package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v62/github"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// Replies survive a crash at any point without being lost or posted twice.
// Each reply has a deterministic key (the delivery's record key and what the
// reply is, or for a denial the issue). Before posting, the intent is
// recorded under that key; the comment carries the key's marker, hidden in an
// HTML comment; once posted, the comment's id is recorded. A later attempt
// that finds the intent but no id may have died between posting and
// recording: it looks for the marker among the issue's comments first, and
// posts only when none carries it.

// replyMarker is the hidden line that names the reply with key among an
// issue's comments.
func ReplyMarker(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "<!-- adbot:reply " + hex.EncodeToString(sum[:12]) + " -->"
}

// reply posts an [AGENT] comment on the command's issue once per delivery:
// what names the reply within the delivery. In the delivery record, a reply
// present with id 0 is an intent, with an id a posted comment.
func (st *state) reply(ctx context.Context, what, body string) error {
	id, ok := st.rec.Replies[what]
	if ok && id != 0 {
		return nil
	}
	marker := ReplyMarker(st.key + "/" + what)
	if st.rec.Replies == nil {
		st.rec.Replies = map[string]int64{}
	}
	if ok {
		// An earlier attempt meant to post it: did it?
		found, err := st.w.findMarked(ctx, st.gh, st.c.Owner, st.c.Repo, st.c.Issue, marker)
		if err != nil {
			return err
		}
		if found != 0 {
			zerolog.Ctx(ctx).Info().Str("reply", what).Int64("comment", found).Msg("Reply found posted by an earlier attempt")
			st.rec.Replies[what] = found
			return st.save(ctx)
		}
	} else {
		st.rec.Replies[what] = 0
		if err := st.save(ctx); err != nil {
			return fmt.Errorf("record intent to reply %s: %w", what, err)
		}
	}
	id, err := st.w.comment(ctx, st.gh, st.c.Owner, st.c.Repo, st.c.Issue, body+" "+marker)
	if err != nil {
		return err
	}
	st.rec.Replies[what] = id
	return st.save(ctx)
}

// comment posts body (which must begin with [AGENT]) on an issue.
func (w *Worker) comment(ctx context.Context, gh *github.Client, owner, repo string, issue int, body string) (int64, error) {
	if !strings.HasPrefix(body, agentPrefix) {
		body = agentPrefix + " " + body
	}
	cm, _, err := gh.Issues.CreateComment(ctx, owner, repo, issue, &github.IssueComment{Body: &body})
	if err != nil {
		return 0, fmt.Errorf("comment on %s/%s#%d: %w", owner, repo, issue, err)
	}
	return cm.GetID(), nil
}

// findMarked returns the id of the bot's comment on an issue that carries
// marker, or 0 when there is none.
func (w *Worker) findMarked(ctx context.Context, gh *github.Client, owner, repo string, issue int, marker string) (int64, error) {
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := gh.Issues.ListComments(ctx, owner, repo, issue, opt)
		if err != nil {
			return 0, fmt.Errorf("list comments of %s/%s#%d: %w", owner, repo, issue, err)
		}
		for _, c := range cs {
			if strings.HasPrefix(c.GetBody(), agentPrefix) && strings.Contains(c.GetBody(), marker) {
				return c.GetID(), nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
}

// denial is what bus.DeliveryBucket holds under an issue's denial key: the
// delivery that said it (or means to), and its comment once posted.
type denial struct {
	Delivery string `json:"delivery"`
	Comment  int64  `json:"comment,omitempty"`
}

// deny tells an unauthorized user, once per issue, that only maintainers
// can steer the bot. Nothing else happens: no Hub lookup, no job.
//
// The first delivery to record its intent under the issue's denial key
// owns the reply: it posts, then records the comment. Another delivery that
// finds the intent leaves it to the owner, which is redelivered if it dies
// before posting; the owner's redelivery looks for the marker before posting
// again.
func (w *Worker) deny(ctx context.Context, st *state) error {
	c := st.c
	log := zerolog.Ctx(ctx)
	key := "denied." + bus.JobKey(c.Owner, c.Repo, c.Issue)
	marker := ReplyMarker(key)
	mine, _ := json.Marshal(denial{Delivery: st.key})
	rev, err := w.d.Bus.Deliveries.Create(ctx, key, mine)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		e, err := w.d.Bus.Deliveries.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read denial on %s/%s#%d: %w", c.Owner, c.Repo, c.Issue, err)
		}
		var d denial
		if json.Unmarshal(e.Value(), &d) != nil || d.Comment != 0 || d.Delivery != st.key {
			// Told already, or by an older version, or another delivery owns it.
			log.Debug().Msg("Unauthorized user already told on this issue")
			return nil
		}
		rev = e.Revision()
		found, err := w.findMarked(ctx, st.gh, c.Owner, c.Repo, c.Issue, marker)
		if err != nil {
			return err
		}
		if found != 0 {
			return w.recordDenial(ctx, key, rev, st.key, found)
		}
	case err != nil:
		return fmt.Errorf("record intent to deny on %s/%s#%d: %w", c.Owner, c.Repo, c.Issue, err)
	}
	id, err := w.comment(ctx, st.gh, c.Owner, c.Repo, c.Issue, deniedText(c.Actor, w.d.BotName)+" "+marker)
	if err != nil {
		if ok, _ := Transient(err); !ok {
			// Never said, and retrying will not say it: let another
			// delivery on the issue try.
			_ = w.d.Bus.Deliveries.Delete(ctx, key, jetstream.LastRevision(rev))
		}
		return err
	}
	return w.recordDenial(ctx, key, rev, st.key, id)
}

// recordDenial marks the denial under key, at revision rev, as posted.
func (w *Worker) recordDenial(ctx context.Context, key string, rev uint64, delivery string, id int64) error {
	b, _ := json.Marshal(denial{Delivery: delivery, Comment: id})
	if _, err := w.d.Bus.Deliveries.Update(ctx, key, b, rev); err != nil {
		return fmt.Errorf("record denial %s: %w", key, err)
	}
	return nil
}
