package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/handlers"
)

// Outcomes of a delivery, the "outcome" label of adbot_webhook_deliveries_total.
const (
	outcomeAccepted     = "accepted"     // a handler took it (queued, or filtered out on purpose)
	outcomeIgnored      = "ignored"      // no handler for the event type
	outcomeUnauthorized = "unauthorized" // missing or wrong signature
	outcomeBadRequest   = "bad_request"  // not JSON, bad headers
	outcomeTooLarge     = "too_large"    // over MaxBodyBytes
	outcomeUnavailable  = "unavailable"  // NATS could not take it, or too many bodies in flight: 503
	outcomeError        = "error"        // anything else
)

// errNotJSON marks a signed body that is not JSON.
var errNotJSON = errors.New("webhook payload is not JSON")

// eventName accepts GitHub's event names only, bounding the metric label.
var eventName = regexp.MustCompile(`^[a-z_]{1,64}$`)

// webhook is the delivery intake. In order: reserve the body's bytes in the
// in-flight budget (503 with Retry-After when it is spent), bound the body
// (413), check the signature over the raw bytes before anything is parsed
// (401), check the delivery id and that the payload is JSON (400), then hand it to go-githubapp's dispatcher, whose
// handlers publish a command with the delivery id as message id. A handler
// that cannot publish makes it a 503, which the redelivery sweeper repairs.
func (s *Server) webhook() http.Handler {
	dispatcher := githubapp.NewEventDispatcher(s.handlers, s.cfg.GitHub.WebhookSecret,
		githubapp.WithErrorCallback(s.onDispatchError),
		githubapp.WithResponseCallback(onDispatchResponse),
	)
	secret := []byte(s.cfg.GitHub.WebhookSecret)
	budget := &byteBudget{limit: s.cfg.Server.MaxBodiesInFlight}
	retryAfter := strconv.Itoa(int(s.cfg.Server.BusyRetryAfter / time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		event := "unverified"
		defer func() {
			s.metrics.observe(event, outcomeOf(rec.status), time.Since(start))
		}()
		if r.Method != http.MethodPost {
			rec.Header().Set("Allow", http.MethodPost)
			http.Error(rec, "webhook deliveries are POSTed", http.StatusMethodNotAllowed)
			return
		}
		// Nothing is verified yet: the header is whatever the sender chose,
		// up to MaxHeaderBytes, so the log takes no more than a GUID's worth.
		log := zerolog.Ctx(r.Context()).With().
			Str(githubapp.LogKeyDeliveryID, clipHeader(r.Header.Get("X-GitHub-Delivery"))).Logger()
		want := s.cfg.Server.MaxBodyBytes
		if r.ContentLength >= 0 && r.ContentLength < want {
			want = r.ContentLength
		}
		if !budget.take(want) {
			log.Warn().Int64("bytes", want).Int64("in_flight", budget.held()).Msg("webhook bodies in flight at their bound")
			rec.Header().Set("Retry-After", retryAfter)
			http.Error(rec, "too many webhook bodies in flight; retry later", http.StatusServiceUnavailable)
			return
		}
		defer budget.give(want)
		body, err := readBody(http.MaxBytesReader(rec, r.Body, s.cfg.Server.MaxBodyBytes), want)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				log.Warn().Int64("limit", tooBig.Limit).Msg("webhook body too large")
				http.Error(rec, "payload too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(rec, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := github.ValidateSignature(r.Header.Get(github.SHA256SignatureHeader), body, secret); err != nil {
			log.Warn().Err(err).Msg("webhook signature rejected")
			http.Error(rec, "missing or invalid X-Hub-Signature-256", http.StatusUnauthorized)
			return
		}
		if id := r.Header.Get("X-GitHub-Delivery"); !bus.TokenOK(id, false) {
			// GitHub sends a GUID: anything else would become an
			// unbounded key and message id.
			log.Warn().Int("length", len(id)).Msg("webhook delivery id rejected")
			http.Error(rec, "X-GitHub-Delivery is not a delivery id (up to 128 characters of A-Z, a-z, 0-9, '-' and '_')", http.StatusBadRequest)
			return
		}
		if e := r.Header.Get("X-GitHub-Event"); eventName.MatchString(e) {
			event = e
		} else {
			event = "unknown"
		}
		if err := checkJSON(r.Header.Get("Content-Type"), body); err != nil {
			log.Warn().Err(err).Str(githubapp.LogKeyEventType, event).Msg("webhook payload rejected")
			http.Error(rec, err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Server.IntakeTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = io.NopCloser(bytes.NewReader(body))
		dispatcher.ServeHTTP(rec, r)
	})
}

// byteBudget counts the webhook body bytes held at once (MaxBodiesInFlight).
type byteBudget struct {
	limit int64
	mu    sync.Mutex
	n     int64
}

// take reserves n bytes, or reports false when that would pass the limit.
func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n+n > b.limit {
		return false
	}
	b.n += n
	return true
}

// give returns n bytes taken before.
func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n -= n
}

func (b *byteBudget) held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// readBody reads r whole into a buffer sized for the size expected, so that
// a body of the announced length is read without growing (and copying) the
// buffer on the way: what the budget reserved is about what is held.
func readBody(r io.Reader, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxLoggedHeader bounds an unverified header value in the log: a GitHub
// delivery GUID has 36 characters.
const maxLoggedHeader = 64

func clipHeader(v string) string {
	if len(v) <= maxLoggedHeader {
		return v
	}
	return v[:maxLoggedHeader] + "…"
}

// checkJSON checks that the payload of a signed body is JSON, as go-githubapp
// will extract it (the body, or the form field "payload").
func checkJSON(contentType string, body []byte) error {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return errors.New("missing or bad Content-Type")
	}
	payload := body
	switch mt {
	case "application/json":
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return errNotJSON
		}
		payload = []byte(form.Get("payload"))
	default:
		return errors.New("unsupported Content-Type " + mt)
	}
	if !json.Valid(payload) {
		return errNotJSON
	}
	return nil
}

// onDispatchError maps what the dispatcher or a handler returned to a status.
func (s *Server) onDispatchError(w http.ResponseWriter, r *http.Request, err error) {
	log := zerolog.Ctx(r.Context())
	var ve githubapp.ValidationError
	var pe *handlers.PayloadError
	switch {
	case errors.As(err, &ve):
		// The signature was checked already: what is left is a bad header.
		log.Warn().Err(ve.Cause).Msg("webhook delivery rejected")
		http.Error(w, "invalid webhook headers or payload", http.StatusBadRequest)
	case errors.As(err, &pe):
		log.Warn().Str("reason", pe.Reason).Msg("webhook payload refused")
		http.Error(w, pe.Error(), http.StatusBadRequest)
	case isPayloadError(err):
		log.Warn().Err(err).Msg("webhook payload does not decode")
		http.Error(w, "payload does not decode", http.StatusBadRequest)
	default:
		// NATS down, a publish that timed out, anything else: GitHub sees a
		// failed delivery and the sweeper asks for it again.
		log.Error().Err(err).Bool("bus", isBusError(err)).Msg("webhook delivery not queued")
		http.Error(w, "cannot queue the delivery now; it will be redelivered", http.StatusServiceUnavailable)
	}
}

// isPayloadError reports whether err says the payload does not decode into
// the event's type: retrying will not help.
func isPayloadError(err error) bool {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	return errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, errNotJSON)
}

// isBusError reports whether err comes from NATS (used only for logging fields).
func isBusError(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// onDispatchResponse answers 200 for handled events and 202 for event types no handler takes.
func onDispatchResponse(w http.ResponseWriter, r *http.Request, event string, handled bool) {
	if !handled {
		zerolog.Ctx(r.Context()).Info().Str("ignored", "adbot takes no "+event+" events").Msg("Ignoring event")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if res := githubapp.GetResponder(r.Context()); res != nil {
		res(w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func outcomeOf(status int) string {
	switch {
	case status == http.StatusAccepted:
		return outcomeIgnored
	case status >= 200 && status < 300:
		return outcomeAccepted
	case status == http.StatusUnauthorized:
		return outcomeUnauthorized
	case status == http.StatusRequestEntityTooLarge:
		return outcomeTooLarge
	case status == http.StatusServiceUnavailable:
		return outcomeUnavailable
	case status >= 400 && status < 500:
		return outcomeBadRequest
	default:
		return outcomeError
	}
}

// statusRecorder remembers the status written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
