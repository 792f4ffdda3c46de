package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
)

// BenchmarkOnboardCommand times one onboard command through the worker: the
// permission look-up (cached after the first), 👀, the Hub preflight, the job,
// the status comment and the first cycle, against the fake GitHub and Hub on
// loopback and an embedded NATS server. Each iteration is a new issue.
func BenchmarkOnboardCommand(b *testing.B) {
	r := newBenchRig(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := onboard(i+1, maint, "Qwen/Qwen3-0.6B")
		c.Owner, c.Repo, c.DeliveryID, c.Received = owner, repo, fmt.Sprint("bench-", i), time.Now()
		data, _ := json.Marshal(c)
		if _, err := r.res.JS.Publish(ctx, bus.CommandSubject, data, jetstream.WithMsgID(c.DeliveryID)); err != nil {
			b.Fatal(err)
		}
		r.idle()
	}
	b.StopTimer()
	if j := r.job(b.N); j == nil || j.StatusCommentID == 0 {
		b.Fatalf("last job = %+v", j)
	}
}
