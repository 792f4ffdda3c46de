package bus_test

import (
	"testing"

	"github.com/nvidia/adbot/bus"
)

func TestWaitReason(t *testing.T) {
	tests := []struct {
		need  int
		fleet []bus.Presence
		want  string
	}{
		{4, nil, "waiting for 4 free GPUs; no runner online"},
		{1, nil, "waiting for 1 free GPU; no runner online"},
		{4, []bus.Presence{{GPUs: 2, FreeGPUs: 2}, {GPUs: 2}}, "waiting for 4 free GPUs; 2 runners online, largest has 2: none can run it"},
		{1, []bus.Presence{{GPUs: 8, FreeGPUs: 0}}, "waiting for 1 free GPU; 1 runner online, most free on one is 0"},
		{2, []bus.Presence{{GPUs: 8, FreeGPUs: 4}, {GPUs: 8, Draining: true, FreeGPUs: 8}}, "waiting for 2 free GPUs; 2 runners online, one has 4 free and should take it shortly (1 draining)"},
		{8, []bus.Presence{{GPUs: 8, FreeGPUs: 8, Draining: true}}, "waiting for 8 free GPUs; 1 runner online, most free on one is 0 (1 draining)"},
	}
	for _, tt := range tests {
		if got := bus.WaitReason(tt.need, tt.fleet); got != tt.want {
			t.Errorf("WaitReason(%d, %+v) = %q, want %q", tt.need, tt.fleet, got, tt.want)
		}
	}
}
