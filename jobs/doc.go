// Package jobs carries out the commands that webhook handlers publish: it
// authorizes the actor, reacts, asks the HuggingFace Hub, creates and steers
// jobs, writes their status comment and publishes their cycles.
//
// One idea per file: worker.go consumes the command stream (ack, retry,
// terminate, delivery records); process.go is the recipe every command
// follows (authorize, react, dispatch); onboard.go makes a job; feedback.go
// parks review remarks; steer.go changes a job that is there (proceed,
// cancel, retry, status, end); authz.go decides who may; reply.go posts
// replies and denials exactly once across crashes; texts.go words them;
// status.go and queue.go show where a job stands.
package jobs
