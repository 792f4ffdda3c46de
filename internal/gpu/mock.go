package gpu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxb200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// MockPrefix starts an ADBOT_GPUS value that mocks the GPUs.
const MockPrefix = "mock:"

// MockForm is the accepted form of a mock selection, for error messages.
const MockForm = "mock:<count>x<model>-<memory>GB, e.g. mock:8xH100-80GB"

// Limits of a mock spec: enough for any real host, small enough to be a typo
// when exceeded.
const (
	maxMockCount    = 64
	maxMockMemoryGB = 1024
)

// MockSpec is ADBOT_GPUS=mock:<count>x<model>-<memory>GB: Count idle GPUs of
// Model with MemoryGB each, from go-nvml's mock servers (mock/dgxh100 and
// its siblings), so that a runner's inventory, admission and "free" rule run
// unchanged on a host without GPUs. Nothing runs on them.
type MockSpec struct {
	Count    int
	Model    string // upper case, one of MockModels
	MemoryGB int
}

// mockFamily is a GPU model go-nvml mocks: the server of the DGX that holds
// it, and its configurations by memory size in GB.
type mockFamily struct {
	server  func(...gpus.Config) *server.Server
	configs map[int]gpus.Config
}

var mockFamilies = map[string]mockFamily{
	"A100": {dgxa100.NewWithGPUs, map[int]gpus.Config{40: gpus.A100_SXM4_40GB, 80: gpus.A100_SXM4_80GB}},
	"A30":  {dgxa100.NewWithGPUs, map[int]gpus.Config{24: gpus.A30_PCIE_24GB}},
	"H100": {dgxh100.NewWithGPUs, map[int]gpus.Config{80: gpus.H100_SXM5_80GB}},
	"H200": {dgxh200.NewWithGPUs, map[int]gpus.Config{141: gpus.H200_SXM5_141GB}},
	"B200": {dgxb200.NewWithGPUs, map[int]gpus.Config{180: gpus.B200_SXM5_180GB}},
}

// MockModels lists the models a mock spec may name.
func MockModels() []string {
	var m []string
	for k := range mockFamilies {
		m = append(m, k)
	}
	slices.Sort(m)
	return m
}

// String renders m the way ParseMock reads it.
func (m MockSpec) String() string {
	return fmt.Sprintf("%s%dx%s-%dGB", MockPrefix, m.Count, m.Model, m.MemoryGB)
}

// ParseMock reads a mock selection, "mock:8xH100-80GB" (case does not
// matter). A model go-nvml mocks may be given any memory size; a size it
// knows (A100 40 or 80, A30 24, H100 80, H200 141, B200 180) keeps its name.
func ParseMock(v string) (MockSpec, error) {
	bad := func(why string) (MockSpec, error) {
		return MockSpec{}, fmt.Errorf("%s=%q: %s; want %s (models: %s)", EnvGPUs, v, why, MockForm, strings.Join(MockModels(), ", "))
	}
	s := strings.TrimSpace(v)
	if strings.EqualFold(s, "mock") {
		return bad("no GPUs given")
	}
	if len(s) < len(MockPrefix) || !strings.EqualFold(s[:len(MockPrefix)], MockPrefix) {
		return bad("not a mock spec")
	}
	s = strings.ToUpper(strings.TrimSpace(s[len(MockPrefix):]))
	count, rest, ok := strings.Cut(s, "X")
	if !ok {
		return bad("no count: the spec starts with the number of GPUs and an x")
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > maxMockCount || count[0] == '+' || count[0] == '-' {
		return bad(fmt.Sprintf("%q is not a GPU count from 1 to %d", count, maxMockCount))
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return bad("no memory size: the model is followed by -<memory>GB")
	}
	model, mem := rest[:i], rest[i+1:]
	if _, ok := mockFamilies[model]; !ok {
		return bad(fmt.Sprintf("%q is not a mocked GPU model", model))
	}
	digits, ok := strings.CutSuffix(mem, "GB")
	gb, err := strconv.Atoi(digits)
	if !ok || err != nil || gb < 1 || gb > maxMockMemoryGB || digits[0] == '+' || digits[0] == '-' {
		return bad(fmt.Sprintf("%q is not a memory size from 1GB to %dGB", mem, maxMockMemoryGB))
	}
	return MockSpec{Count: n, Model: model, MemoryGB: gb}, nil
}

// MockSuffix ends the name of every mocked GPU, so that whatever prints
// GPU names (adbot preflight, logs) shows that they are not real.
const MockSuffix = " (mock)"

// config is the go-nvml configuration of one of m's GPUs.
func (m MockSpec) config() gpus.Config {
	f := mockFamilies[m.Model]
	if c, ok := f.configs[m.MemoryGB]; ok {
		c.Name = strings.TrimPrefix(c.Name, "Mock ") + MockSuffix
		return c
	}
	// Another memory size of a known model: the smallest known one, resized.
	sizes := make([]int, 0, len(f.configs))
	for gb := range f.configs {
		sizes = append(sizes, gb)
	}
	slices.Sort(sizes)
	c := f.configs[sizes[0]]
	c.Name = fmt.Sprintf("NVIDIA %s %dGB", m.Model, m.MemoryGB) + MockSuffix
	c.MemoryMB = uint64(m.MemoryGB) * 1024
	c.MIGProfiles = gpus.MIGProfileConfig{} // MIG slices of another size would not add up
	return c
}

// NVML returns an NVML library that answers with m's GPUs, every one idle:
// no memory in use, no compute process, 0% utilization. Their UUIDs are
// fixed (GPU-00000000-0000-4000-8000-00000000000N), so that logs of two runs
// compare.
func (m MockSpec) NVML() nvml.Interface {
	cfg := m.config()
	s := mockFamilies[m.Model].server(gpus.Multiple(m.Count, cfg)...)
	for i, d := range s.Devices {
		dev := d.(*server.Device)
		dev.UUID = fmt.Sprintf("GPU-00000000-0000-4000-8000-%012d", i)
		total := dev.MemoryInfo.Total
		dev.MemoryInfo = nvml.Memory{Total: total, Free: total}
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.SUCCESS }
	}
	return s
}
