package server

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nvidia/adbot/bus"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	deliveries  *prometheus.CounterVec
	unavailable prometheus.Counter
	intake      *prometheus.HistogramVec
	sweeps      *prometheus.CounterVec
	redelivered prometheus.Counter
	tokens      *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, res *bus.Resources) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adbot_webhook_deliveries_total",
			Help: "Webhook deliveries by event type and outcome (accepted, ignored, unauthorized, bad_request, too_large, unavailable, error).",
		}, []string{"event", "outcome"}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "adbot_webhook_unavailable_total",
			Help: "Webhook deliveries answered 503 because the bus could not take them.",
		}),
		intake: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "adbot_webhook_intake_seconds",
			Help:    "Time from a delivery's arrival to its answer, by outcome.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adbot_sweeper_runs_total",
			Help: "Redelivery sweeps by result (ok, error).",
		}, []string{"result"}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "adbot_sweeper_redeliveries_total",
			Help: "Redeliveries of failed webhook deliveries the sweeper asked GitHub for.",
		}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adbot_token_requests_total",
			Help: "Installation token requests from runners by result (granted, refused, error).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.deliveries, m.unavailable, m.intake, m.sweeps, m.redelivered, m.tokens,
		queueCollector{res: res}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(event, outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(event, outcome).Inc()
	if outcome == outcomeUnavailable {
		m.unavailable.Inc()
	}
	m.intake.WithLabelValues(outcome).Observe(d.Seconds())
}

// queueCollector reports the messages waiting on the command and cycle
// streams, read from JetStream when scraped.
type queueCollector struct{ res *bus.Resources }

var queueDepth = prometheus.NewDesc("adbot_queue_depth",
	"Messages waiting on a stream subject (commands, and cycles by GPU count).",
	[]string{"stream", "subject"}, nil)

func (q queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDepth }

func (q queueCollector) Collect(ch chan<- prometheus.Metric) {
	if q.res == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if info, err := q.res.Commands.Info(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(info.State.Msgs), bus.CommandStream, bus.CommandSubject)
	}
	info, err := q.res.Cycles.Info(ctx, jetstream.WithSubjectFilter(bus.CycleSubjectPrefix+"*"))
	if err != nil {
		return
	}
	for _, n := range bus.GPUSizes {
		subj := bus.CycleSubject(n)
		ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(info.State.Subjects[subj]), bus.CycleStream, subj)
	}
}
