package jobs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/jobs"
)

// countMarked counts the comments on issue that carry marker.
func (r *rig) countMarked(issue int, marker string) int {
	n := 0
	for _, c := range r.gh.Comments(owner, repo, issue) {
		if strings.Contains(c.Body, marker) {
			n++
		}
	}
	return n
}

func (r *rig) putRecord(key string, v any) {
	r.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.res.Deliveries.Put(context.Background(), key, b); err != nil {
		r.t.Fatal(err)
	}
}

// A reply was posted before it was recorded: a crash between the two posted
// it twice on redelivery (105 replies for 100 issues). Now the intent is
// recorded first, and a redelivery that finds it looks for the reply's
// marker before posting.
func TestReplyAfterCrash(t *testing.T) {
	tests := []struct {
		name string
		// posted: the earlier attempt got as far as posting.
		posted bool
	}{
		{"crashed after posting", true},
		{"crashed before posting", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, -1)
			issue := 10 + i
			id := "crash-" + strings.ReplaceAll(tc.name, " ", "-")
			key := bus.DeliveryKey(id)
			marker := jobs.ReplyMarker(key + "/invalid-id")
			r.putRecord(key, map[string]any{"replies": map[string]int64{"invalid-id": 0}})
			if tc.posted {
				r.gh.AddComment(owner, repo, issue, "adbot[bot]", "[AGENT] @maint I can't onboard `x`. "+marker)
			}
			c := onboard(issue, maint, "not a model id")
			c.DeliveryID = id
			r.send(c)
			if diff := cmp.Diff(r.countMarked(issue, marker), 1); diff != "" {
				t.Errorf("replies carrying the marker (-got +want):\n%s", diff)
			}
			// And once more: the record now names the comment.
			r.sendAs(c, id+"-again")
			if diff := cmp.Diff(r.countMarked(issue, marker), 1); diff != "" {
				t.Errorf("replies after a second redelivery (-got +want):\n%s", diff)
			}
		})
	}
}

// A denial was recorded before it was posted: a crash between the two lost
// it (99 of 100). Now the delivery that records the intent owns it, and its
// redelivery posts what was not posted.
func TestDenialAfterCrash(t *testing.T) {
	tests := []struct {
		name   string
		owner  string // the delivery whose intent is recorded
		posted bool
		want   int // denials on the issue afterwards
	}{
		{"own intent, not posted", "d-deny", false, 1},
		{"own intent, posted", "d-deny", true, 1},
		{"another delivery's intent", "d-other", false, 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, -1)
			issue := 20 + i
			key := "denied." + bus.JobKey(owner, repo, issue)
			marker := jobs.ReplyMarker(key)
			r.putRecord(key, map[string]any{"delivery": bus.DeliveryKey(tc.owner)})
			if tc.posted {
				r.gh.AddComment(owner, repo, issue, "adbot[bot]", "[AGENT] Hi @reader, thanks for the request! "+marker)
			}
			c := onboard(issue, "reader", "Qwen/Qwen3-0.6B")
			c.DeliveryID = "d-deny"
			r.send(c)
			if diff := cmp.Diff(r.countMarked(issue, marker), tc.want); diff != "" {
				t.Errorf("denials (-got +want):\n%s", diff)
			}
			if r.job(issue) != nil {
				t.Error("a denied request made a job")
			}
		})
	}
}

// A command no handler would make is terminated, not carried out, and the
// worker goes on with the next.
func TestInvalidCommandsAreTerminated(t *testing.T) {
	r := newRig(t, -1)
	for _, c := range []bus.Command{
		{Kind: bus.CmdOnboard, Issue: 0, Actor: maint, ModelID: "Qwen/Qwen3-0.6B"},
		{Kind: bus.CmdOnboard, Issue: -5, Actor: maint, ModelID: "Qwen/Qwen3-0.6B"},
		{Kind: bus.CmdOnboard, Issue: 3, Actor: "", ModelID: "Qwen/Qwen3-0.6B"},
		{Kind: bus.CmdOnboard, Issue: 3, Actor: maint, Owner: owner, Repo: strings.Repeat("r", 5000)},
		{Kind: "explode", Issue: 3, Actor: maint},
	} {
		c.InstallationID = 1
		r.send(c)
	}
	if n := len(r.gh.Requests()); n != 0 {
		t.Errorf("%d GitHub requests for invalid commands, want none", n)
	}
	r.send(onboard(4, maint, "Qwen/Qwen3-0.6B"))
	if j := r.job(4); j == nil || j.Status != bus.StatusQueued {
		t.Errorf("job after the invalid commands = %+v, want a queued one", j)
	}
}

// A command that fails in a way retrying will not fix is terminated, and the
// person who asked is told once, instead of hearing nothing.
func TestFailedForGoodIsSaid(t *testing.T) {
	r := newRig(t, -1)
	r.gh.FailNext(http.MethodGet, "/repos/"+owner+"/"+repo+"/collaborators/", 1, http.StatusUnprocessableEntity, nil)
	c := onboard(30, "boss", "Qwen/Qwen3-0.6B")
	c.ActorAssociation = "COLLABORATOR"
	id := r.send(c)
	bodies := r.bodies(30)
	if len(bodies) != 1 || !strings.Contains(bodies[0], "could not carry out") || !strings.Contains(bodies[0], id) {
		t.Errorf("replies after a failure for good = %q, want one saying so with the delivery id", bodies)
	}
	if r.job(30) != nil {
		t.Error("a job was made although the command failed")
	}
}
