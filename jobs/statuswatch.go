package jobs

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// The status comment has one writer: the server. Runners record what they
// do in the job (the phase running, the phases done, the status a cycle
// ended with); watchStatus follows the job bucket and brings each job's
// status comment up to date, rendered as every other edit of it is
// (Worker.view, with the queue's figures), through refreshStatus, which
// commands use too: edits of one comment go one at a time, each showing the
// job's newest record, and only when the text changed. A restarted server
// simply renders the newest records again. It runs until
// ctx ends (the server runs it beside Run).
func (w *Worker) WatchStatus(ctx context.Context) error {
	log := zerolog.Ctx(ctx)
	for ctx.Err() == nil {
		if err := w.followJobs(ctx); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("follow jobs for the status comments: again in a few seconds")
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}
	return nil
}

func (w *Worker) followJobs(ctx context.Context) error {
	// The watch starts with every job's newest record, so that a change
	// made while no writer followed (a restart) is shown too; jobs that had
	// ended by then keep their comment as it is.
	watch, err := w.d.Bus.Jobs.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = watch.Stop() }()
	initial := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-watch.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				initial = false // the newest records are in: updates follow
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var j bus.Job
			if json.Unmarshal(e.Value(), &j) != nil || j.StatusCommentID == 0 || j.Key == "" || (initial && j.Status.Terminal()) {
				continue
			}
			if err := w.editStatus(ctx, &j); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Str(bus.LogKeyJob, j.Key).Msg("update status comment")
			}
		}
	}
}

// editStatus brings j's status comment up to j's newest record.
func (w *Worker) editStatus(ctx context.Context, j *bus.Job) error {
	gh, err := w.d.Clients.NewInstallationClient(j.InstallationID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.d.CommandTimeout)
	defer cancel()
	return w.refreshStatus(ctx, gh, j)
}
