package clustertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
)

// TestRunnerPermissions holds the runner user of deploy/nats-cluster.conf to
// what the server alone may do, with the permission errors nats-server
// itself sends: no cycle or command put on the bus, no stream made, changed
// or deleted, no delivery record read, and no listening on adbot.tokens,
// where other runners ask for tokens with their leases' proofs. A runner
// asking for a token for a job whose lease it does not hold is refused by the
// server's broker. Each refusal is checked against the server user doing the
// same, which the file allows.
func TestRunnerPermissions(t *testing.T) {
	c := startCluster(t)
	r := newRig(t, c) // adbot serve made the bus and answers token requests
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Another runner's job: created, and leased with a proof only it knows.
	key := bus.JobKey(owner, repo, 77)
	if _, err := bus.CreateJob(ctx, r.res.Jobs, &bus.Job{Key: key, Owner: owner, Repo: repo, Issue: 77, InstallationID: installation,
		ModelID: model, GPUs: 1, Cycle: 1, Status: bus.StatusRunning, Runner: "gpu-host-1"}); err != nil {
		t.Fatal(err)
	}
	_, hash := bus.NewLeaseProof()
	lease, _ := json.Marshal(bus.Lease{Runner: "gpu-host-1", Cycle: 1, GPUs: []int{0}, Renewed: time.Now().UTC(), ProofSHA256: hash})
	if _, err := r.res.Leases.Put(ctx, key, lease); err != nil {
		t.Fatal(err)
	}

	type conn struct {
		user string
		nc   *nats.Conn
		js   jetstream.JetStream
		errs asyncErrors
	}
	// All on one node: a message reaches that node's subscribers before
	// the reply it causes does, so a flush shows whether a listener heard it.
	dial := func(user string) conn {
		errs := make(asyncErrors, 64)
		nc := c.connect(user, errs, c.nodes[0])
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return conn{user, nc, js, errs}
	}
	asRunner, asServer := dial(runnerUser), dial(serverUser)
	cycle, _ := json.Marshal(bus.Cycle{JobKey: bus.JobKey(owner, repo, 78), Number: 1, Kind: bus.KindOnboard, Owner: owner, Repo: repo, Issue: 78, ModelID: model, GPUs: 1})

	tests := []struct {
		name string
		// violation is the subject nats-server names in its refusal, and
		// sub whether it refuses a subscription (else a publish).
		violation string
		sub       bool
		do        func(ctx context.Context, c conn) error
		// unchanged, when set, says whether the bus is as it was.
		unchanged func(ctx context.Context) error
	}{{
		name:      "put a cycle on the bus",
		violation: bus.CycleSubject(1),
		do: func(ctx context.Context, c conn) error {
			_, err := c.js.Publish(ctx, bus.CycleSubject(1), cycle, jetstream.WithMsgID("rogue/"+c.user))
			return err
		},
		unchanged: func(ctx context.Context) error { return streamEmpty(ctx, r.res.Cycles) },
	}, {
		name:      "put a webhook command on the bus",
		violation: bus.CommandSubject,
		do: func(ctx context.Context, c conn) error {
			_, err := c.js.Publish(ctx, bus.CommandSubject, []byte(`{}`), jetstream.WithMsgID("rogue/"+c.user))
			return err
		},
	}, {
		name:      "make a stream",
		violation: "$JS.API.STREAM.CREATE.ROGUE",
		do: func(ctx context.Context, c conn) error {
			_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ROGUE", Subjects: []string{"rogue." + c.user}, Storage: jetstream.MemoryStorage})
			return err
		},
	}, {
		name:      "change the cycle stream",
		violation: "$JS.API.STREAM.UPDATE." + bus.CycleStream,
		do: func(ctx context.Context, c conn) error {
			s, err := c.js.Stream(ctx, bus.CycleStream)
			if err != nil {
				return err
			}
			cfg := s.CachedInfo().Config
			_, err = c.js.UpdateStream(ctx, cfg) // the same configuration: allowed, changes nothing
			return err
		},
	}, {
		name:      "empty the cycle stream",
		violation: "$JS.API.STREAM.PURGE." + bus.CycleStream,
		do: func(ctx context.Context, c conn) error {
			s, err := c.js.Stream(ctx, bus.CycleStream)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		},
	}, {
		name:      "read the delivery records",
		violation: "$JS.API.STREAM.INFO.KV_" + bus.DeliveryBucket,
		do: func(ctx context.Context, c conn) error {
			_, err := c.js.KeyValue(ctx, bus.DeliveryBucket)
			return err
		},
	}, {
		name:      "listen for token requests",
		violation: bus.TokenSubject,
		sub:       true,
		do: func(ctx context.Context, c conn) error {
			sub, err := c.nc.SubscribeSync(bus.TokenSubject)
			if err != nil {
				return err
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := c.nc.FlushWithContext(ctx); err != nil {
				return err
			}
			// A runner asks for its token; the listener must not see it.
			if _, err := asRunner.nc.RequestWithContext(ctx, bus.TokenSubject, []byte(`{}`)); err != nil {
				return err
			}
			if err := c.nc.FlushWithContext(ctx); err != nil {
				return err
			}
			if _, err := sub.NextMsg(time.Millisecond); err == nil {
				return errHeard
			}
			return nil
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The server user may: the refusal below is the runner user's.
			sctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			if err := tc.do(sctx, asServer); tc.sub && !errors.Is(err, errHeard) {
				t.Fatalf("as %s: %v, want the listener to hear the request", serverUser, err)
			} else if !tc.sub && err != nil {
				t.Fatalf("as %s: %v (want it allowed)", serverUser, err)
			}
			if err := permissionError(asServer.errs); err != nil {
				t.Fatalf("as %s: %v (want it allowed)", serverUser, err)
			}
			if tc.name == "put a cycle on the bus" {
				// Take the server user's cycle back off the bus.
				if err := r.res.Cycles.Purge(ctx); err != nil {
					t.Fatal(err)
				}
			}

			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			err := tc.do(rctx, asRunner)
			if errors.Is(err, errHeard) {
				t.Errorf("as %s: the listener heard another runner's token request", runnerUser)
			} else if !tc.sub && err == nil {
				t.Errorf("as %s: no error", runnerUser)
			}
			verb := "Publish to"
			if tc.sub {
				verb = "Subscription to"
			}
			want := `Permissions Violation for ` + verb + ` "` + tc.violation + `"`
			var got error
			waitFor(t, wait, "nats-server's refusal: "+want, func() bool {
				select {
				case got = <-asRunner.errs:
					return errors.Is(got, nats.ErrPermissionViolation) && strings.Contains(got.Error(), want)
				default:
					return false
				}
			})
			if tc.unchanged != nil {
				if err := tc.unchanged(ctx); err != nil {
					t.Error(err)
				}
			}
		})
	}

	t.Run("ask for a token for a job another runner holds", func(t *testing.T) {
		req, _ := json.Marshal(bus.TokenRequest{JobKey: key, Runner: "gpu-host-1", Proof: "guessed", Permissions: map[string]string{"contents": "write"}})
		m, err := asRunner.nc.RequestWithContext(ctx, bus.TokenSubject, req)
		if err != nil {
			t.Fatal(err)
		}
		var rep bus.TokenReply
		if err := json.Unmarshal(m.Data, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Token != "" || !strings.Contains(rep.Error, "did not prove it holds the lease") {
			t.Errorf("reply = token %t, error %q; want refused for want of the lease's proof", rep.Token != "", rep.Error)
		}
		for _, tr := range r.gh.TokenRequests() {
			if tr.Permissions != nil {
				t.Errorf("GitHub minted a runner's token: %+v", tr)
			}
		}
	})
}

// errHeard says a listener on adbot.tokens heard a request.
var errHeard = errors.New("heard a token request")

// permissionError returns a permission violation the connection was sent, if any.
func permissionError(errs asyncErrors) error {
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) {
				return err
			}
		default:
			return nil
		}
	}
}

// streamEmpty fails when s holds a message.
func streamEmpty(ctx context.Context, s jetstream.Stream) error {
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != 0 {
		return errors.New("the cycle stream holds a message the runner published")
	}
	return nil
}
