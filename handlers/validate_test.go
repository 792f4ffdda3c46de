package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/handlers"
)

// published keeps what the handlers publish, without NATS.
type published struct{ cmds []bus.Command }

func (c *published) Publish(_ context.Context, _ string, data []byte, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	var cmd bus.Command
	if err := json.Unmarshal(data, &cmd); err != nil {
		return nil, err
	}
	c.cmds = append(c.cmds, cmd)
	return &jetstream.PubAck{}, nil
}

// noJobs is a job bucket without jobs.
type noJobs struct{}

func (noJobs) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

// handle runs the handler of event on payload.
func handle(t testing.TB, event string, payload []byte) ([]bus.Command, error) {
	pub := &published{}
	for _, h := range handlers.New(handlers.Deps{Publisher: pub, Jobs: noJobs{}, AppID: 1, BotLogin: "adbot[bot]"}) {
		if h.Handles()[0] == event {
			err := h.Handle(context.Background(), event, "d-1", payload)
			return pub.cmds, err
		}
	}
	t.Fatalf("no handler for %s", event)
	return nil, nil
}

const (
	repoJSON   = `"repository":{"name":"TensorRT-LLM","owner":{"login":"NVIDIA"}},"installation":{"id":42}`
	senderJSON = `"sender":{"login":"alice","type":"User"}`
	issueJSON  = `"issue":{"number":7,"title":"onboard Qwen/Qwen3-0.6B","user":{"login":"alice"},"author_association":"MEMBER"}`
)

// seeds are payloads of every handled event with the objects that matter
// null, missing or out of range (issue #10), and whole ones.
var seeds = []struct {
	name, event, payload string
	reason               string // the PayloadError's Reason; "" for none
}{
	{"whole issue", "issues", `{"action":"opened",` + issueJSON + `,` + repoJSON + `,` + senderJSON + `}`, ""},
	{"issue null", "issues", `{"action":"opened","issue":null,` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNoIssue},
	{"issue missing", "issues", `{"action":"opened",` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNoIssue},
	{"sender null", "issues", `{"action":"opened",` + issueJSON + `,` + repoJSON + `,"sender":null}`, handlers.RefuseNoSender},
	{"sender login empty", "issues", `{"action":"opened",` + issueJSON + `,` + repoJSON + `,"sender":{"login":"","type":"User"}}`, handlers.RefuseNoSender},
	{"number null", "issues", `{"action":"opened","issue":{"number":null,"title":"onboard a/b"},` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNumber},
	{"number 0", "issues", `{"action":"opened","issue":{"number":0,"title":"onboard a/b"},` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNumber},
	{"number -5", "issues", `{"action":"labeled","label":{"name":"ad-onboard"},"issue":{"number":-5,"title":"a/b"},` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNumber},
	{"repo name 5000", "issues", `{"action":"opened",` + issueJSON + `,"repository":{"name":"` + strings.Repeat("r", 5000) + `","owner":{"login":"NVIDIA"}},` + senderJSON + `}`, handlers.RefuseRepoName},
	{"owner with a space", "issues", `{"action":"opened",` + issueJSON + `,"repository":{"name":"r","owner":{"login":"a b"}},` + senderJSON + `}`, handlers.RefuseRepoName},
	{"installation -1", "issues", `{"action":"opened",` + issueJSON + `,"repository":{"name":"r","owner":{"login":"o"}},"installation":{"id":-1},` + senderJSON + `}`, handlers.RefuseInstallation},
	{"comment null", "issue_comment", `{"action":"created","comment":null,` + issueJSON + `,` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNoComment},
	{"comment's issue null", "issue_comment", `{"action":"created","comment":{"id":1,"body":"/onboard help"},"issue":null,` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNoIssue},
	{"whole comment", "issue_comment", `{"action":"created","comment":{"id":1,"body":"/onboard help"},` + issueJSON + `,` + repoJSON + `,` + senderJSON + `}`, ""},
	{"review null", "pull_request_review", `{"action":"submitted","review":null,"pull_request":{"number":3},` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNoReview},
	{"review's pull request null", "pull_request_review", `{"action":"submitted","review":{"state":"approved","body":"/onboard status"},"pull_request":null,` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNoPullRequest},
	{"review comment's pull request number 0", "pull_request_review_comment", `{"action":"created","comment":{"id":2,"body":"x"},"pull_request":{"number":0},` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNumber},
	{"closed pull request null", "pull_request", `{"action":"closed","pull_request":null,` + repoJSON + `,` + senderJSON + `}`, handlers.RefuseNoPullRequest},
	{"closed pull request sender null", "pull_request", `{"action":"closed","pull_request":{"number":4},` + repoJSON + `,"sender":null}`, handlers.RefuseNoSender},
}

// Payloads with null, missing or out-of-range objects are refused with the
// reason (the server answers 400 with it); none panics or is queued.
func TestPayloadsRefusedAtTheEdge(t *testing.T) {
	for _, tc := range seeds {
		t.Run(tc.name, func(t *testing.T) {
			cmds, err := handle(t, tc.event, []byte(tc.payload))
			var pe *handlers.PayloadError
			reason := ""
			if errors.As(err, &pe) {
				reason = pe.Reason
			} else if err != nil {
				t.Fatalf("Handle = %v, want a PayloadError or nil", err)
			}
			if diff := cmp.Diff(reason, tc.reason); diff != "" {
				t.Errorf("refusal (-got +want):\n%s", diff)
			}
			if tc.reason != "" && len(cmds) != 0 {
				t.Errorf("refused payload queued %d commands", len(cmds))
			}
			if tc.reason == "" && len(cmds) != 1 {
				t.Errorf("whole payload queued %d commands, want 1", len(cmds))
			}
		})
	}
}

// FuzzHandlers feeds every handler arbitrary payloads: none panics, and
// every command queued is one the command worker takes (bus.Command.Invalid).
func FuzzHandlers(f *testing.F) {
	for _, s := range seeds {
		f.Add(s.event, s.payload)
	}
	f.Fuzz(func(t *testing.T, event, payload string) {
		switch event {
		case "issues", "issue_comment", "pull_request_review", "pull_request_review_comment", "pull_request":
		default:
			return
		}
		cmds, err := handle(t, event, []byte(payload))
		var pe *handlers.PayloadError
		if errors.As(err, &pe) && pe.Reason == "" {
			t.Fatal("a PayloadError without a reason")
		}
		for _, c := range cmds {
			if why := c.Invalid(); why != "" {
				t.Fatalf("queued a command the worker drops (%s): %+v", why, c)
			}
		}
	})
}
