// Package clustertest runs adbot on a real three-node NATS JetStream cluster:
// three nats-server processes on loopback, configured from
// deploy/nats-cluster.conf (its per-role users and permissions, its route
// authorization and TLS, with ports, store directories and generated secrets
// put in at test time), the streams and buckets replicated three ways.
//
// The tests hold the deployment to what it promises: a node killed with
// SIGKILL in the middle of a batch of onboardings loses no delivery, runs no
// cycle twice and posts nothing twice; the node, started again, catches up;
// and the runners' NATS user cannot put cycles on the bus or listen for
// another runner's token requests.
//
// The tests need the nats-server binary on PATH (.ci/run installs it). Where it
// is absent they skip, except under CI, where they fail. The package has no
// code of its own; its tests are in *_test.go.
package clustertest
