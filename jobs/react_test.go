package jobs_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/fakegithub"
)

// reviewEyes are the reactions on review comments of pull request pr.
func (r *rig) reviewEyes(pr int) []fakegithub.Reaction {
	var out []fakegithub.Reaction
	for _, x := range r.gh.Reactions(owner, repo, pr) {
		if x.ReviewCommentID != 0 {
			out = append(out, x)
		}
	}
	return out
}

// lineComment is the command a review's line comment becomes.
func lineComment(pr int, rc fakegithub.ReviewComment, assoc string) bus.Command {
	return bus.Command{Kind: bus.CmdFeedback, Event: "pull_request_review_comment.created", InstallationID: 1, Issue: pr, IsPR: true,
		Actor: rc.User, ActorAssociation: assoc, ReviewCommentID: rc.ID,
		Feedback: []bus.Feedback{{Source: "review_comment", ID: rc.ID, Author: rc.User, Body: rc.Body, Path: rc.Path, Line: rc.Line}}}
}

// TestReviewCommentEyes: a maintainer's line comment gets one 👀 on that
// comment, even when its command is carried out twice or delivered again; a
// stranger's gets none.
func TestReviewCommentEyes(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.Status, j.PR = bus.StatusWaitingReview, 50 })
	mine := r.gh.AddReviewComment(owner, repo, fakegithub.ReviewComment{Pull: 50, User: maint, Body: "rename", Path: "a.py", Line: 3})
	theirs := r.gh.AddReviewComment(owner, repo, fakegithub.ReviewComment{Pull: 50, User: "stranger", Body: "push to main", Path: "a.py", Line: 4})
	reactPath := fmt.Sprintf("/pulls/comments/%d/reactions", mine.ID)

	// Editing the status comment fails past the transport's retries: the
	// worker carries the command out again, reacting again.
	r.gh.FailNext(http.MethodPatch, "/repos/octo/models/issues/comments/", 6, http.StatusInternalServerError, nil)
	c := lineComment(50, mine, "MEMBER")
	d := r.send(c)
	if n := r.requests(http.MethodPost, reactPath); n < 2 {
		t.Errorf("%d reaction requests for the line comment, want the command carried out again (2 or more)", n)
	}
	// GitHub's redelivery keeps the delivery's GUID.
	c.DeliveryID = d
	r.sendAs(c, d)
	r.send(lineComment(50, theirs, "NONE"))

	got := r.reviewEyes(50)
	want := []fakegithub.Reaction{{Owner: owner, Repo: repo, Issue: 50, ReviewCommentID: mine.ID, Content: "eyes", User: r.gh.BotLogin()}}
	if len(got) == 1 {
		want[0].ID = got[0].ID
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("reactions on review comments (-got +want):\n%s", diff)
	}
	if n := r.eyes(50); n != 1 {
		t.Errorf("%d 👀 on the pull request and its comments, want 1", n)
	}
	if cs := r.cycles(1); len(cs) != 2 || len(cs[1].Feedback) != 1 {
		t.Errorf("cycles = %+v, want one feedback cycle with the maintainer's remark only", cs)
	}
}

// TestReviewCommentCommandEyes: a command written as a line comment gets its
// 👀 on that comment.
func TestReviewCommentCommandEyes(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.PR = 50 })
	rc := r.gh.AddReviewComment(owner, repo, fakegithub.ReviewComment{Pull: 50, User: maint, Body: "/onboard status", Path: "a.py", Line: 1})
	r.send(bus.Command{Kind: bus.CmdStatus, Event: "pull_request_review_comment.created", InstallationID: 1, Issue: 50, IsPR: true,
		Actor: maint, ActorAssociation: "MEMBER", ReviewCommentID: rc.ID})
	if got := r.reviewEyes(50); len(got) != 1 || got[0].ReviewCommentID != rc.ID || got[0].Content != "eyes" {
		t.Errorf("reactions on review comments = %+v, want one 👀 on %d", got, rc.ID)
	}
}

// TestReviewCommentGoneStillCarriedOut: a line comment deleted before the
// worker reacts (GitHub answers 404) loses its 👀, not its remark.
func TestReviewCommentGoneStillCarriedOut(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	r.setJob(1, func(j *bus.Job) { j.Status, j.PR = bus.StatusWaitingReview, 50 })
	r.send(lineComment(50, fakegithub.ReviewComment{ID: 424242, User: maint, Body: "rename", Path: "a.py", Line: 3}, "MEMBER"))
	if n := r.requests(http.MethodPost, "/pulls/comments/424242/reactions"); n != 1 {
		t.Errorf("%d reaction requests, want 1", n)
	}
	if cs := r.cycles(1); len(cs) != 2 || len(cs[1].Feedback) != 1 {
		t.Errorf("cycles = %+v, want the remark's feedback cycle", cs)
	}
}
