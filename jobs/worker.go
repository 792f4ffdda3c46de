package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/hub"
)

// Tuning defaults.
const (
	// DefaultPermissionTTL is how long a collaborator permission is cached.
	DefaultPermissionTTL = 5 * time.Minute
	// DefaultFeedbackSettle is how long feedback on an idle job waits for more
	// (a review's line comments arrive as separate events) before its cycle goes out.
	DefaultFeedbackSettle = 10 * time.Second
	// DefaultCommandTimeout bounds the work on one command; it stays under the
	// command consumer's AckWait (30 s).
	DefaultCommandTimeout = 25 * time.Second
	// DefaultMinRetryDelay is the first delay before a failed command is tried
	// again; it doubles with each delivery, up to maxNak.
	DefaultMinRetryDelay = 2 * time.Second
	maxNak               = 10 * time.Minute
)

// Hub answers model metadata and serves a model's small files (config.json,
// to size a model the Hub gives no safetensors total for); *hub.Client
// satisfies it.
type Hub interface {
	Model(ctx context.Context, id, revision string) (*hub.Model, error)
	File(ctx context.Context, id, revision, name string) ([]byte, error)
}

// WorkerDeps is what the worker needs.
type WorkerDeps struct {
	// Clients makes installation clients (and an App client to find an
	// installation when a payload lacked one). Give it ghretry's middleware.
	Clients githubapp.ClientCreator
	Bus     *bus.Resources
	Hub     Hub
	// BotName names the bot in replies ("adbot" if empty).
	BotName string
	// TriggerLabel is mentioned in help (bus.DefaultTriggerLabel if empty).
	TriggerLabel string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// PermissionTTL, FeedbackSettle and CommandTimeout default to the
	// Default* values; a negative FeedbackSettle sends feedback at once.
	PermissionTTL  time.Duration
	FeedbackSettle time.Duration
	CommandTimeout time.Duration
	// MinRetryDelay is the first wait before a failed command is tried again
	// (DefaultMinRetryDelay).
	MinRetryDelay time.Duration
	// Concurrency is how many commands Run carries out at once (1 if zero).
	// They share one pull from the consumer, the permission cache and the
	// queue figures, so one worker with Concurrency n asks GitHub and
	// JetStream less than n workers would.
	Concurrency int
	// QueueRefresh is how old the queue position and the runners online shown
	// in status comments may be (DefaultQueueRefresh).
	QueueRefresh time.Duration
}

// Worker carries out commands from bus.CommandStream, Concurrency at a time.
type Worker struct {
	d     WorkerDeps
	perms *permCache
	queue *queueCache
	edits statusEdits
}

// NewWorker returns a worker; Run starts it.
func NewWorker(d WorkerDeps) *Worker {
	d.BotName = cmp.Or(d.BotName, "adbot")
	d.TriggerLabel = cmp.Or(d.TriggerLabel, bus.DefaultTriggerLabel)
	if d.Now == nil {
		d.Now = time.Now
	}
	d.PermissionTTL = cmp.Or(d.PermissionTTL, DefaultPermissionTTL)
	d.FeedbackSettle = cmp.Or(d.FeedbackSettle, DefaultFeedbackSettle)
	d.CommandTimeout = cmp.Or(d.CommandTimeout, DefaultCommandTimeout)
	d.MinRetryDelay = cmp.Or(d.MinRetryDelay, DefaultMinRetryDelay)
	d.QueueRefresh = cmp.Or(d.QueueRefresh, DefaultQueueRefresh)
	d.Concurrency = max(d.Concurrency, 1)
	return &Worker{
		d:     d,
		perms: &permCache{ttl: d.PermissionTTL, now: d.Now, m: map[string]permEntry{}},
		queue: newQueueCache(d.Bus, d.QueueRefresh),
	}
}

// Run consumes commands until ctx ends. It returns nil when ctx ends, or the
// error that kept it from consuming: a consumer that goes away (deleted,
// the connection closed) ends Run with an error, so that its owner sees
// that commands are no longer carried out.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.d.Bus.Commands.Consumer(ctx, bus.CommandConsumer)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: no failure
		}
		return fmt.Errorf("command consumer %s: %w", bus.CommandConsumer, err)
	}
	// A few commands more than are carried out at once wait in the client,
	// so that a goroutine finishing one finds the next at hand.
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * w.d.Concurrency))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consume %s: %w", bus.CommandConsumer, err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // stops the iterator when ctx ends or Run returns
		select {
		case <-ctx.Done():
		case <-stop:
		}
		it.Stop()
	})
	defer func() { close(stop); wg.Wait() }()
	var loops sync.WaitGroup
	var once sync.Once
	var lost error // why the iterator closed while ctx still ran
	for range w.d.Concurrency {
		loops.Go(func() {
			if err := w.loop(ctx, it); err != nil {
				once.Do(func() { lost = err })
			}
		})
	}
	loops.Wait()
	if lost != nil && ctx.Err() == nil {
		return fmt.Errorf("consume %s: %w", bus.CommandConsumer, lost)
	}
	return nil
}

// loop carries out commands from it, one at a time, until it is stopped. It
// returns the last error read when the iterator closed by itself.
func (w *Worker) loop(ctx context.Context, it jetstream.MessagesContext) error {
	log := zerolog.Ctx(ctx)
	var last error
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if ctx.Err() != nil {
				return nil
			}
			return errors.Join(last, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			last = err
			log.Warn().Err(err).Msg("Reading commands")
			continue
		}
		w.safeHandle(ctx, msg)
	}
}

// safeHandle is handle with a last line of defence: whatever a message does
// to the code around the command itself (safeProcess recovers the command),
// it is logged and terminated, and the loop goes on to the next one.
func (w *Worker) safeHandle(ctx context.Context, msg jetstream.Msg) {
	defer func() {
		if r := recover(); r != nil {
			zerolog.Ctx(ctx).Error().Str("stack", string(debug.Stack())).Msgf("Handling a command panicked: %v", r)
			_ = msg.TermWithReason("handling panicked")
		}
	}()
	w.handle(ctx, msg)
}

// deliveryRecord is what the worker remembers of one delivery, in
// bus.DeliveryBucket: whether it was carried out, and the replies it posted
// (so a redelivered command never replies twice).
type deliveryRecord struct {
	Done     bool             `json:"done,omitempty"`
	Settling bool             `json:"settling,omitempty"`
	Replies  map[string]int64 `json:"replies,omitempty"`
}

// errSettle asks for the command to come back after the feedback settle time.
var errSettle = errors.New("feedback settling")

// handle carries out one message and acks, naks or terminates it.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	log := zerolog.Ctx(ctx)
	var c bus.Command
	if err := json.Unmarshal(msg.Data(), &c); err != nil {
		log.Error().Err(err).Int("bytes", len(msg.Data())).Msg("Dropping undecodable command")
		_ = msg.TermWithReason("undecodable command")
		return
	}
	if why := c.Invalid(); why != "" {
		// A command no handler makes (an older version's, or one put on
		// the stream by hand): nothing in it can be trusted as a key or an
		// address for a reply.
		log.Error().Str("reason", why).Str("command", clip(string(c.Kind), 40)).Msg("Dropping invalid command")
		_ = msg.TermWithReason("invalid command: " + why)
		return
	}
	l := log.With().Str(githubapp.LogKeyDeliveryID, c.DeliveryID).Str("command", string(c.Kind)).
		Str(githubapp.LogKeyRepositoryOwner, c.Owner).Str(githubapp.LogKeyRepositoryName, c.Repo).
		Int("number", c.Issue).Str("actor", c.Actor).Logger()
	ctx = l.WithContext(ctx)
	key := bus.DeliveryKey(deliveryID(c))
	rec, rev, err := w.loadRecord(ctx, key)
	if err != nil {
		l.Warn().Err(err).Msg("Reading delivery record")
		_ = msg.NakWithDelay(w.nakDelay(msg, 0))
		return
	}
	if rec.Done {
		l.Debug().Msg("Delivery already carried out")
		_ = msg.Ack()
		return
	}
	st := &state{w: w, c: c, rec: rec, key: key, rev: rev}
	cctx, cancel := context.WithTimeout(ctx, w.d.CommandTimeout)
	err = w.safeProcess(cctx, st)
	cancel()
	switch {
	case err == nil:
		st.rec.Done, st.rec.Settling = true, false
		if err := st.save(ctx); err != nil {
			l.Warn().Err(err).Msg("Recording delivery as processed")
			_ = msg.NakWithDelay(w.nakDelay(msg, 0))
			return
		}
		_ = msg.Ack()
	case errors.Is(err, errSettle):
		st.rec.Settling = true
		if err := st.save(ctx); err != nil {
			l.Warn().Err(err).Msg("Recording settling feedback")
		}
		_ = msg.NakWithDelay(w.d.FeedbackSettle)
	default:
		if ok, after := Transient(err); ok && ctx.Err() == nil && !lastDelivery(msg) {
			d := w.nakDelay(msg, after)
			l.Warn().Err(err).Dur("retry_in", d).Msg("Command failed; will retry")
			_ = msg.NakWithDelay(d)
			return
		}
		if ctx.Err() != nil {
			_ = msg.Nak()
			return
		}
		l.Error().Err(err).Msg("Command failed for good")
		w.sayFailed(ctx, st)
		_ = msg.TermWithReason(clip(err.Error(), 200))
	}
}

// sayFailed tells whoever asked that a command failed in a way retrying
// will not fix, once per delivery, when there is someone to tell: a person
// asked (not a pull request closing) and the installation client was made.
// It is best effort: the failure is logged already.
func (w *Worker) sayFailed(ctx context.Context, st *state) {
	c := st.c
	if st.gh == nil || c.Actor == "" || c.Kind == bus.CmdEnd && (c.Reason == "merged" || c.Reason == "closed") {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, w.d.CommandTimeout)
	defer cancel()
	if err := st.reply(rctx, "failed", failedText(c.Actor, c.Kind, c.DeliveryID)); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not say that the command failed")
	}
}

// safeProcess runs process, turning a panic into an error that is not retried.
func (w *Worker) safeProcess(ctx context.Context, st *state) (err error) {
	defer func() {
		if r := recover(); r != nil {
			zerolog.Ctx(ctx).Error().Str("stack", string(debug.Stack())).Msgf("Command panicked: %v", r)
			err = &permanentError{fmt.Errorf("command panicked: %v", r)}
		}
	}()
	return w.process(ctx, st)
}

// lastDelivery reports whether msg will not be delivered again after this
// attempt (bus.MaxDeliver): a failure then is final, and said so.
func lastDelivery(msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	return err == nil && md.NumDelivered >= bus.MaxDeliver
}

func (w *Worker) nakDelay(msg jetstream.Msg, after time.Duration) time.Duration {
	d := after
	if d == 0 {
		n := uint64(1)
		if md, err := msg.Metadata(); err == nil {
			n = md.NumDelivered
		}
		d = w.d.MinRetryDelay << min(n-1, 10)
	}
	return min(max(d, w.d.MinRetryDelay), maxNak)
}

// deliveryID is the command's webhook delivery GUID, or for a command that
// came without one (none does from the webhook handlers) an id made from what
// it is about.
func deliveryID(c bus.Command) string {
	if c.DeliveryID != "" {
		return c.DeliveryID
	}
	return fmt.Sprintf("nodelivery-%s-%s-%d-%d", c.Kind, c.Repo, c.Issue, c.Received.UnixNano())
}

func (w *Worker) loadRecord(ctx context.Context, key string) (deliveryRecord, uint64, error) {
	var rec deliveryRecord
	e, err := w.d.Bus.Deliveries.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return rec, 0, nil
	}
	if err != nil {
		return rec, 0, fmt.Errorf("get delivery record %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		// An old plain "processed" mark counts as done.
		return deliveryRecord{Done: true}, e.Revision(), nil
	}
	return rec, e.Revision(), nil
}

// state is one command being carried out.
type state struct {
	w   *Worker
	c   bus.Command
	rec deliveryRecord
	key string
	rev uint64
	gh  *github.Client
}

// save writes the delivery record.
func (st *state) save(ctx context.Context) error {
	b, err := json.Marshal(st.rec)
	if err != nil {
		return fmt.Errorf("encode delivery record: %w", err)
	}
	rev, err := st.w.d.Bus.Deliveries.Put(ctx, st.key, b)
	if err != nil {
		return fmt.Errorf("put delivery record %s: %w", st.key, err)
	}
	st.rev = rev
	return nil
}

// permanentError is a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Transient reports whether err may pass if the work is tried again, and how
// long GitHub or the Hub asked to wait (0 when they did not say).
func Transient(err error) (bool, time.Duration) {
	var perm *permanentError
	if errors.As(err, &perm) {
		return false, 0
	}
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		return true, time.Until(rl.Rate.Reset.Time)
	}
	var ab *github.AbuseRateLimitError
	if errors.As(err, &ab) {
		return true, ab.GetRetryAfter()
	}
	var he *hub.Error
	if errors.As(err, &he) {
		return he.Temporary(), 0
	}
	var ge *github.ErrorResponse
	if errors.As(err, &ge) && ge.Response != nil {
		s := ge.Response.StatusCode
		return s >= 500 || s == 429 || s == 408, 0
	}
	// Network, NATS and timeouts: try again.
	return true, 0
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
