// Package gputest gives tests a GPU host made from go-nvml's mock servers
// (mock/dgxh100), whose memory, compute processes and utilization a test sets.
package gputest

import (
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Host is a mock NVML server of H100 80GB GPUs, all idle until a test says
// otherwise. It is safe for concurrent use.
type Host struct {
	*server.Server

	mu    sync.Mutex
	state []gpuState
}

type gpuState struct {
	used  uint64
	procs []nvml.ProcessInfo
	util  uint32
}

// H100 returns a host with n idle H100 SXM5 80GB GPUs (8 is a DGX H100).
func H100(n int) *Host {
	h := &Host{Server: dgxh100.NewWithGPUs(gpus.Multiple(n, gpus.H100_SXM5_80GB)...), state: make([]gpuState, n)}
	for i, d := range h.Devices {
		dev := d.(*server.Device)
		i := i
		total := dev.MemoryInfo.Total
		dev.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
			h.mu.Lock()
			defer h.mu.Unlock()
			used := min(h.state[i].used, total)
			return nvml.Memory{Total: total, Used: used, Free: total - used}, nvml.SUCCESS
		}
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return append([]nvml.ProcessInfo(nil), h.state[i].procs...), nvml.SUCCESS
		}
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return nvml.Utilization{Gpu: h.state[i].util}, nvml.SUCCESS
		}
	}
	return h
}

// Use makes GPU i hold bytes of memory for the given compute processes, each
// holding an equal share, at 100% utilization when any process is given.
func (h *Host) Use(i int, bytes uint64, pids ...uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.check(i)
	s := gpuState{used: bytes}
	for _, pid := range pids {
		s.procs = append(s.procs, nvml.ProcessInfo{Pid: pid, UsedGpuMemory: bytes / uint64(len(pids))})
	}
	if len(pids) > 0 {
		s.util = 100
	}
	h.state[i] = s
}

// SetUtilization sets GPU i's utilization percentage, leaving the rest.
func (h *Host) SetUtilization(i int, pct uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.check(i)
	h.state[i].util = pct
}

// Release makes GPU i idle again.
func (h *Host) Release(i int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.check(i)
	h.state[i] = gpuState{}
}

func (h *Host) check(i int) {
	if i < 0 || i >= len(h.state) {
		panic(fmt.Sprintf("gputest: GPU %d out of range 0-%d", i, len(h.state)-1))
	}
}

// Missing is an NVML whose library cannot be loaded, as on a host without an
// NVIDIA driver.
func Missing() nvml.Interface {
	s := dgxh100.NewWithGPUs()
	s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	return s
}
