package jobpage

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nvidia/adbot/runners"
)

// BenchmarkAddChunk measures taking in one chunk of live output (a 200-byte
// agent stream-json line or a pytest line) with a full tail and 8 open
// pages on the job, each stream drained as it goes.
func BenchmarkAddChunk(b *testing.B) {
	for _, tc := range []struct {
		name  string
		chunk runners.LogChunk
	}{
		{"agent", runners.LogChunk{Cycle: 1, Step: "agent-model-1", Stream: "stdout",
			Data: `{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"python -m pytest tests/unittest/auto_deploy -k model -x -q"}}]}}` + "\n"}},
		{"pytest", runners.LogChunk{Cycle: 1, Step: "pytest-1", Stream: "stdout",
			Data: "tests/unittest/_torch/auto_deploy/unit/singlegpu/models/test_model.py::test_forward[bf16] PASSED   [ 42%]\n"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHub()
			h.buffer = 1 << 16
			for i := range DefaultTailItems + 10 { // a full tail
				c := tc.chunk
				c.Seq = i
				h.addChunk("k", c)
			}
			var drained []chan struct{}
			for range 8 {
				s, _, _ := h.subscribe("k", "", 0)
				done := make(chan struct{})
				go func() {
					for range s.ch {
					}
					close(done)
				}()
				drained = append(drained, done)
			}
			b.SetBytes(int64(len(tc.chunk.Data)))
			b.ResetTimer()
			for i := range b.N {
				c := tc.chunk
				c.Seq = i
				h.addChunk("k", c)
			}
			b.StopTimer()
			h.close()
			for _, d := range drained {
				<-d
			}
		})
	}
}

// BenchmarkJobPage measures rendering a job's page with a full tail of
// pytest output (the log store listing left out).
func BenchmarkJobPage(b *testing.B) {
	p := &Page{hub: newHub(), now: func() time.Time { return testClock }, webURL: "https://github.com"}
	tmpl, err := parseTemplates()
	if err != nil {
		b.Fatal(err)
	}
	p.tmpl = tmpl
	j := sampleJob()
	p.hub.putJob(j.Key, j)
	for i := range DefaultTailItems {
		p.hub.addChunk(j.Key, runners.LogChunk{Cycle: 1, Step: "pytest-1", Seq: i, Stream: "stdout", Data: fmt.Sprintf("test_%d <PASSED> %s\n", i, strings.Repeat("x", 60))})
	}
	req, _ := http.NewRequest(http.MethodGet, "/jobs/"+j.Key, nil)
	req.SetPathValue("key", j.Key)
	b.ResetTimer()
	for range b.N {
		w := discardWriter{h: http.Header{}}
		p.job(&w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
		b.SetBytes(int64(w.n))
	}
}

type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(s int)   { d.status = s }
func (d *discardWriter) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	d.n += len(b)
	return len(b), nil
}
