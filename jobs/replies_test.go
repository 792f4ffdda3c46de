package jobs

import (
	"strings"
	"testing"

	"github.com/nvidia/adbot/bus"
)

// TestStatusTextCounts: counts in the /onboard status reply agree with their nouns.
func TestStatusTextCounts(t *testing.T) {
	tests := []struct {
		gpus, position, remarks int
		want                    []string
	}{
		{1, 1, 1, []string{" 1 cycle for 1 GPU waits ahead or with it.", " 1 review remark waits for the next cycle."}},
		{4, 3, 2, []string{" 3 cycles for 4 GPUs wait ahead or with it.", " 2 review remarks wait for the next cycle."}},
	}
	for _, tt := range tests {
		j := &bus.Job{ModelID: "a/b", Status: bus.StatusQueued, GPUs: tt.gpus, PendingFeedback: make([]bus.Feedback, tt.remarks)}
		got := statusText("maint", j, queued{Position: tt.position})
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("status reply lacks %q:\n%s", w, got)
			}
		}
	}
}
