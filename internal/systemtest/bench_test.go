package systemtest_test

import (
	"testing"
	"time"

	"github.com/nvidia/adbot/bus"
	onboarding "github.com/nvidia/adbot/onboarding/workflow"
	"github.com/nvidia/adbot/server"
)

// BenchmarkOnboardingCycle measures what the bot itself adds to one
// onboarding cycle run with the stand-ins: the time from the issue's
// delivery to the job waiting for review, less the time the agent, pytest
// and the end-to-end processes ran (which a real agent and GPU replace), and
// the latency from a review comment's delivery to its update cycle being
// taken by the runner, less the feedback settle window (the deliberate wait
// that batches remarks). Run:
//
//	go test ./internal/systemtest -run '^$' -bench OnboardingCycle -benchtime 5x
func BenchmarkOnboardingCycle(b *testing.B) {
	r := onboardingRig(b, nil)
	settle := server.DefaultFeedbackSettle
	if r.cfg.FeedbackSettle != nil {
		settle = *r.cfg.FeedbackSettle
	}
	var overhead, withTests, latency, wall time.Duration
	for i := 0; b.Loop(); i++ {
		issue := 100 + i
		key := bus.JobKey(owner, repo, issue)
		start := time.Now()
		j := r.open(issue, "waiting for review", func(j *bus.Job) bool { return j.Status == bus.StatusWaitingReview || j.Status == bus.StatusFailed })
		took := time.Since(start)
		if j.Status != bus.StatusWaitingReview {
			b.Fatalf("cycle failed: %s", j.Note)
		}
		w := r.state(key).Work
		procs := time.Duration((w.Took[onboarding.ClassAgent] + w.Took[onboarding.ClassE2E]) * float64(time.Second))
		tests := time.Duration(w.Took[onboarding.ClassTest] * float64(time.Second))
		wall += took
		overhead += took - procs
		withTests += took - procs - tests

		st := r.state(key)
		rc := r.gh.AddReviewComment(owner, repo, fakeReviewComment(j.PR, st.ModelFile))
		sent := time.Now()
		r.deliver("pull_request_review_comment", server.NewDeliveryID(),
			reviewComment(b, j.PR, rc.ID, int64(900+i), st.ModelFile, 3, rc.Body, j.HeadSHA, maintainer, "MEMBER"))
		j2 := r.waitJobLong(issue, "the update cycle to start", func(j *bus.Job) bool { return j.Cycle == 2 && !j.Started.IsZero() && j.Started.After(sent) })
		latency += j2.Started.Sub(sent) - settle
		r.waitJobLong(issue, "the update cycle to end", func(j *bus.Job) bool {
			return j.Cycle == 2 && j.Status != bus.StatusRunning && j.Status != bus.StatusQueued
		})
	}
	n := float64(b.N)
	b.ReportMetric(wall.Seconds()/n, "s-cycle-wall")
	b.ReportMetric(overhead.Seconds()/n, "s-overhead-incl-pytest")
	b.ReportMetric(withTests.Seconds()/n, "s-overhead")
	b.ReportMetric(latency.Seconds()*1000/n, "ms-review-to-update-start-beyond-settle")
}
