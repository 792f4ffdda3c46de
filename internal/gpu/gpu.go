// Package gpu reads a host's NVIDIA GPUs through NVML (go-nvml) and judges
// which of them are free for a new cycle.
//
// A GPU is free when almost none of its memory is used (under FreeMemoryLimit),
// no compute process holds it and it is idle, as the onboarding workflow's run
// agent judges it. Callers read the inventory again before every admission:
// another user of the host may have started something since the last look.
//
// NVML is loaded dynamically (libnvidia-ml.so.1). On a host without it,
// Open and Inventory return an error wrapping ErrNoNVML, and the runner goes
// on with no GPUs. ADBOT_GPUS=mock:8xH100-80GB replaces NVML with
// go-nvml's mock of idle GPUs, to watch the whole runner on a laptop.
package gpu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/rs/zerolog"
)

// FreeMemoryLimit is the most memory a GPU may have in use and still count as
// free. The run agent uses "under ~1000 MiB"; the driver's own reservation on
// an idle H100 is a few hundred MiB at most.
const FreeMemoryLimit = 1000 << 20

// ErrNoNVML says the NVML library or the driver behind it is not there: the
// host has no usable NVIDIA GPU.
var ErrNoNVML = errors.New("NVML not available (no libnvidia-ml.so.1 or no NVIDIA driver)")

// Process is a compute process holding a GPU.
type Process struct {
	PID uint32 `json:"pid"`
	// UsedMemory is in bytes; 0 when the driver does not say (e.g. without
	// permission to see other users' processes).
	UsedMemory uint64 `json:"used_memory"`
}

// Utilization is the percentage of the last sample period during which the
// GPU's kernels ran (GPU) and its memory was read or written (Memory).
type Utilization struct {
	GPU    uint32 `json:"gpu"`
	Memory uint32 `json:"memory"`
}

// Device is one GPU as NVML sees it at the moment it was read.
type Device struct {
	// Index is NVML's index, the one nvidia-smi shows (PCI bus order). Cycles
	// get it through CUDA_VISIBLE_DEVICES with CUDA_DEVICE_ORDER=PCI_BUS_ID.
	Index int    `json:"index"`
	Name  string `json:"name"`
	UUID  string `json:"uuid"`
	// Memory in bytes.
	MemTotal uint64 `json:"mem_total"`
	MemUsed  uint64 `json:"mem_used"`
	MemFree  uint64 `json:"mem_free"`
	// Processes are the compute processes on the GPU.
	Processes   []Process   `json:"processes,omitempty"`
	Utilization Utilization `json:"utilization"`
}

// Free reports whether a new cycle may have the GPU: under FreeMemoryLimit in
// use, no compute process and 0% utilization.
func (d Device) Free() bool { return d.BusyReason() == "" }

// BusyReason says why the GPU is not free, or "" when it is.
func (d Device) BusyReason() string {
	var why []string
	if d.MemUsed >= FreeMemoryLimit {
		why = append(why, fmt.Sprintf("%s of memory in use", Bytes(d.MemUsed)))
	}
	if n := len(d.Processes); n > 0 {
		pids := make([]string, 0, n)
		for _, p := range d.Processes {
			pids = append(pids, fmt.Sprint(p.PID))
		}
		why = append(why, fmt.Sprintf("%d compute process(es): pid %s", n, strings.Join(pids, ", ")))
	}
	if d.Utilization.GPU > 0 {
		why = append(why, fmt.Sprintf("%d%% utilized", d.Utilization.GPU))
	}
	return strings.Join(why, "; ")
}

// Bytes formats a byte count in GiB or MiB for people.
func Bytes(n uint64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// FreeIndices returns the indices of the free devices, lowest first.
func FreeIndices(devs []Device) []int {
	var free []int
	for _, d := range devs {
		if d.Free() {
			free = append(free, d.Index)
		}
	}
	sort.Ints(free)
	return free
}

// Host reads GPUs through one initialized NVML library. It is safe for
// concurrent use.
type Host struct {
	mu     sync.Mutex
	lib    nvml.Interface
	sel    Selection
	closed bool
}

// Open initializes lib (nvml.New() for the real library, a mock server in
// tests) and returns a Host that reads the devices sel selects. It returns an
// error wrapping ErrNoNVML when the library or driver is missing.
//
// A mock selection (ADBOT_GPUS=mock:...) does not use lib: the Host reads
// the idle GPUs of go-nvml's mock that sel.Mock describes.
func Open(lib nvml.Interface, sel Selection) (h *Host, err error) {
	defer func() {
		// A broken library must not take the runner down with it.
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("initialize NVML: %w (panic: %v)", ErrNoNVML, r)
		}
	}()
	if sel.None {
		return &Host{sel: sel}, nil
	}
	if sel.Mock != nil {
		lib = sel.Mock.NVML()
	}
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, fmt.Errorf("initialize NVML: %w: %v", ErrNoNVML, ret)
	default:
		return nil, fmt.Errorf("initialize NVML: %v", ret)
	}
	return &Host{lib: lib, sel: sel}, nil
}

// Mocked returns the mock spec ("mock:8xH100-80GB") when the Host's GPUs
// are mocked, else "".
func (h *Host) Mocked() string {
	if h.sel.Mock == nil {
		return ""
	}
	return h.sel.Mock.String()
}

// Close shuts NVML down. The Host must not be used afterwards.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.lib == nil {
		h.closed = true
		return nil
	}
	h.closed = true
	if ret := h.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("shut down NVML: %v", ret)
	}
	return nil
}

// Inventory reads every selected device now. With ADBOT_GPUS=none it returns
// no devices and no error.
func (h *Host) Inventory(ctx context.Context) (devs []Device, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errors.New("read GPUs: NVML already shut down")
	}
	if h.lib == nil { // ADBOT_GPUS=none
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			devs, err = nil, fmt.Errorf("read GPUs: NVML call failed: %v", r)
		}
	}()
	n, ret := h.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("count GPUs: %v", ret)
	}
	indices, err := h.sel.Indices(n)
	if err != nil {
		return nil, err
	}
	devs = make([]Device, 0, len(indices))
	for _, i := range indices {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read GPUs: %w", err)
		}
		d, err := readDevice(h.lib, i)
		if err != nil {
			return nil, err
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func readDevice(lib nvml.Interface, i int) (Device, error) {
	dev, ret := lib.DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		return Device{}, fmt.Errorf("get GPU %d: %v", i, ret)
	}
	d := Device{Index: i}
	if d.Name, ret = dev.GetName(); ret != nvml.SUCCESS {
		return Device{}, fmt.Errorf("get name of GPU %d: %v", i, ret)
	}
	if d.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
		return Device{}, fmt.Errorf("get UUID of GPU %d: %v", i, ret)
	}
	mem, ret := dev.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return Device{}, fmt.Errorf("get memory of GPU %d: %v", i, ret)
	}
	d.MemTotal, d.MemUsed, d.MemFree = mem.Total, mem.Used, mem.Free
	procs, ret := dev.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return Device{}, fmt.Errorf("get compute processes of GPU %d: %v", i, ret)
	}
	for _, p := range procs {
		used := p.UsedGpuMemory
		if used == math.MaxUint64 { // NVML_VALUE_NOT_AVAILABLE
			used = 0
		}
		d.Processes = append(d.Processes, Process{PID: p.Pid, UsedMemory: used})
	}
	switch u, ret := dev.GetUtilizationRates(); ret {
	case nvml.SUCCESS:
		d.Utilization = Utilization{GPU: u.Gpu, Memory: u.Memory}
	case nvml.ERROR_NOT_SUPPORTED:
		// Some devices (MIG, some vGPU) do not report it; memory and processes decide.
	default:
		return Device{}, fmt.Errorf("get utilization of GPU %d: %v", i, ret)
	}
	return d, nil
}

// Inventory opens the host's real NVML (or the mock ADBOT_GPUS names, with a
// warning through the context's logger), reads every device ADBOT_GPUS
// selects, and shuts NVML down again. Long-running callers should Open a Host
// once instead.
func Inventory(ctx context.Context) ([]Device, error) {
	sel, err := SelectionFromEnv()
	if err != nil {
		return nil, err
	}
	h, err := Open(nvml.New(), sel)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if m := h.Mocked(); m != "" {
		WarnMocked(ctx, m)
	}
	return h.Inventory(ctx)
}

// WarnMocked logs, at warn level, that the GPUs are mocked by spec.
func WarnMocked(ctx context.Context, spec string) {
	zerolog.Ctx(ctx).Warn().Str(EnvGPUs, spec).Msg("GPUs are mocked: inventory and admission run on go-nvml's mock, nothing runs on a GPU")
}
