// Package bus holds everything that adbot's server and runners exchange over
// NATS JetStream: the names of the stream, consumers and buckets, the message
// types, and the idempotent set-up both sides run on start.
//
// The server publishes cycles; runners pull them from the subject that matches
// the GPUs they have free. Job state lives in a KV bucket and is only changed
// by compare-and-swap (UpdateJob), so a server and any number of runners can
// write it without losing an update.
package bus

import (
	"strconv"
	"time"
)

// Names of the JetStream resources. They are part of the wire contract between
// server and runners of possibly different versions: never rename one.
const (
	// CycleStream holds every cycle waiting for a runner (work-queue retention).
	CycleStream = "ADBOT_CYCLES"
	// CycleSubjectPrefix is followed by the GPU count: adbot.cycles.gpus.4.
	CycleSubjectPrefix = "adbot.cycles.gpus."
	// CommandStream holds webhook deliveries turned into commands, until the
	// server's command worker has carried them out (work-queue retention).
	CommandStream = "ADBOT_COMMANDS"
	// CommandSubject is the one subject of CommandStream.
	CommandSubject = "adbot.commands"
	// CommandConsumer is the durable consumer the server's command workers share.
	CommandConsumer = "server"
	// JobBucket holds one Job per key JobKey(owner, repo, issue).
	JobBucket = "adbot-jobs"
	// LeaseBucket holds one Lease per job being worked on; entries expire after LeaseTTL.
	LeaseBucket = "adbot-leases"
	// RunnerBucket holds one Presence per runner; entries expire after PresenceTTL.
	RunnerBucket = "adbot-runners"
	// DeliveryBucket remembers processed webhook delivery ids for DeliveryTTL.
	DeliveryBucket = "adbot-deliveries"
	// LogStore is the object store bucket holding the full raw logs of every cycle.
	LogStore = "adbot-logs"
	// TokenSubject is the request-reply subject on which runners ask the server
	// for an installation token for the job they hold the lease on.
	TokenSubject = "adbot.tokens"
)

// Tuning values shared by both sides.
const (
	// LeaseTTL is how long a lease lives without renewal; a runner renews it
	// every LeaseTTL/3 while it works.
	LeaseTTL = 30 * time.Second
	// PresenceTTL is how long a runner stays listed without a heartbeat.
	PresenceTTL = 30 * time.Second
	// DeliveryTTL covers GitHub's three days of redeliverable history and a day more.
	DeliveryTTL = 4 * 24 * time.Hour
	// DuplicateWindow is the stream's Nats-Msg-Id de-duplication window.
	DuplicateWindow = 2 * time.Hour
	// AckWait is how long a runner may hold a cycle between InProgress calls.
	AckWait = 2 * time.Minute
	// MaxDeliver bounds redelivery of one cycle before it is given up.
	MaxDeliver = 20
)

// GPUSizes are the GPU counts a cycle can ask for, smallest first; each has its
// own subject and durable consumer.
var GPUSizes = []int{1, 2, 4, 8}

// CycleSubject is the subject for cycles that need gpus GPUs.
func CycleSubject(gpus int) string { return CycleSubjectPrefix + strconv.Itoa(gpus) }

// ConsumerName is the durable consumer, shared by all runners, for cycles of gpus GPUs.
func ConsumerName(gpus int) string { return "gpus-" + strconv.Itoa(gpus) }

// FitGPUs rounds n up to the next size in GPUSizes (n >= 1). It returns 0 when
// n is larger than the largest size.
func FitGPUs(n int) int {
	for _, s := range GPUSizes {
		if n <= s {
			return s
		}
	}
	return 0
}
