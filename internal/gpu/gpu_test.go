package gpu_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/internal/gpu/gputest"
)

func TestDeviceFree(t *testing.T) {
	tests := []struct {
		name string
		dev  gpu.Device
		want string // BusyReason
	}{
		{"idle", gpu.Device{MemUsed: 0}, ""},
		{"driver reservation", gpu.Device{MemUsed: 500 << 20}, ""},
		{"just under", gpu.Device{MemUsed: gpu.FreeMemoryLimit - 1}, ""},
		{"at limit", gpu.Device{MemUsed: gpu.FreeMemoryLimit}, "1000 MiB of memory in use"},
		{"4 GiB held", gpu.Device{MemUsed: 4 << 30, Processes: []gpu.Process{{PID: 77, UsedMemory: 4 << 30}}},
			"4.0 GiB of memory in use; 1 compute process(es): pid 77"},
		{"process with little memory", gpu.Device{MemUsed: 10 << 20, Processes: []gpu.Process{{PID: 1}, {PID: 2}}},
			"2 compute process(es): pid 1, 2"},
		{"utilized", gpu.Device{Utilization: gpu.Utilization{GPU: 3}}, "3% utilized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.dev.BusyReason(); got != tt.want {
				t.Errorf("BusyReason() = %q, want %q", got, tt.want)
			}
			if got, want := tt.dev.Free(), tt.want == ""; got != want {
				t.Errorf("Free() = %v, want %v", got, want)
			}
		})
	}
}

func TestInventoryMock(t *testing.T) {
	ctx := context.Background()
	host := gputest.H100(8)
	h, err := gpu.Open(host, gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	devs, err := h.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 8 {
		t.Fatalf("got %d devices, want 8", len(devs))
	}
	for _, d := range devs {
		if !strings.Contains(d.Name, "H100") || !strings.HasPrefix(d.UUID, "GPU-") || d.MemTotal != 81920<<20 || d.MemFree != d.MemTotal {
			t.Errorf("device %d = %+v, want an idle H100 80GB", d.Index, d)
		}
	}
	if diff := cmp.Diff(gpu.FreeIndices(devs), []int{0, 1, 2, 3, 4, 5, 6, 7}); diff != "" {
		t.Errorf("free (-got +want):\n%s", diff)
	}

	// A process takes 4 GiB on GPU 0, another a little on GPU 5; GPU 3 is busy without memory.
	host.Use(0, 4<<30, 4242)
	host.Use(5, 200<<20, 99)
	host.SetUtilization(3, 40)
	devs, err = h.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gpu.FreeIndices(devs), []int{1, 2, 4, 6, 7}); diff != "" {
		t.Errorf("free while busy (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(devs[0].Processes, []gpu.Process{{PID: 4242, UsedMemory: 4 << 30}}); diff != "" {
		t.Errorf("GPU 0 processes (-got +want):\n%s", diff)
	}
	if devs[0].MemUsed != 4<<30 || devs[0].MemFree != devs[0].MemTotal-4<<30 {
		t.Errorf("GPU 0 memory used %d free %d, want 4 GiB used", devs[0].MemUsed, devs[0].MemFree)
	}

	host.Release(0)
	host.Release(5)
	host.SetUtilization(3, 0)
	devs, err = h.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(gpu.FreeIndices(devs)); got != 8 {
		t.Errorf("after release %d free, want 8", got)
	}
}

func TestInventorySelection(t *testing.T) {
	tests := []struct {
		sel     string
		want    []int
		wantErr string
	}{
		{sel: "auto", want: []int{0, 1, 2, 3}},
		{sel: "none", want: nil},
		{sel: "3,1", want: []int{1, 3}},
		{sel: "0,4", wantErr: "ADBOT_GPUS=0,4 names GPU 4, but this host has 4 GPU(s) (indices 0-3)"},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			sel, err := gpu.ParseSelection(tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			h, err := gpu.Open(gputest.H100(4), sel)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			devs, err := h.Inventory(context.Background())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, d := range devs {
				got = append(got, d.Index)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("indices (-got +want):\n%s", diff)
			}
		})
	}
}

func TestOpenWithoutNVML(t *testing.T) {
	_, err := gpu.Open(gputest.Missing(), gpu.Selection{})
	if !errors.Is(err, gpu.ErrNoNVML) {
		t.Fatalf("Open(missing) = %v, want ErrNoNVML", err)
	}
	// ADBOT_GPUS=none never touches the library.
	h, err := gpu.Open(gputest.Missing(), gpu.Selection{None: true})
	if err != nil {
		t.Fatalf("Open(missing, none) = %v", err)
	}
	if devs, err := h.Inventory(context.Background()); err != nil || len(devs) != 0 {
		t.Fatalf("Inventory = %v, %v; want none", devs, err)
	}
}

// TestRealNVML runs against this machine's NVML: on a host without an NVIDIA
// driver it must say ErrNoNVML rather than panic; on a GPU host it must read
// at least one device.
func TestRealNVML(t *testing.T) {
	h, err := gpu.Open(nvml.New(), gpu.Selection{})
	if errors.Is(err, gpu.ErrNoNVML) {
		t.Logf("no NVML here, as expected on a CPU-only host: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	devs, err := h.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		t.Logf("GPU %d %s %s used %s free=%v", d.Index, d.Name, d.UUID, gpu.Bytes(d.MemUsed), d.Free())
	}
}

func TestParseSelection(t *testing.T) {
	tests := []struct {
		in      string
		want    gpu.Selection
		wantErr string
	}{
		{in: "", want: gpu.Selection{}},
		{in: "auto", want: gpu.Selection{}},
		{in: " AUTO ", want: gpu.Selection{}},
		{in: "none", want: gpu.Selection{None: true}},
		{in: "0", want: gpu.Selection{List: []int{0}}},
		{in: "3, 0,2", want: gpu.Selection{List: []int{0, 2, 3}}},
		{in: "0,,1", wantErr: `ADBOT_GPUS="0,,1": empty entry; want auto, none, GPU indices like 0,2,3, or mock:<count>x<model>-<memory>GB, e.g. mock:8xH100-80GB`},
		{in: "gpu0", wantErr: `ADBOT_GPUS="gpu0": "gpu0" is not a GPU index; want auto, none, GPU indices like 0,2,3, or mock:<count>x<model>-<memory>GB, e.g. mock:8xH100-80GB`},
		{in: "-1", wantErr: `ADBOT_GPUS="-1": "-1" is not a GPU index; want auto, none, GPU indices like 0,2,3, or mock:<count>x<model>-<memory>GB, e.g. mock:8xH100-80GB`},
		{in: "1,1", wantErr: `ADBOT_GPUS="1,1": GPU 1 is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := gpu.ParseSelection(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzParseSelection(f *testing.F) {
	for _, s := range []string{"", "auto", "none", "0,2,3", "1,1", "0,,1", "99999", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := gpu.ParseSelection(s)
		if err != nil {
			return
		}
		// What parses renders back to something that parses to the same selection.
		again, err := gpu.ParseSelection(sel.String())
		if err != nil {
			t.Fatalf("ParseSelection(%q).String() = %q does not parse: %v", s, sel.String(), err)
		}
		if diff := cmp.Diff(again, sel); diff != "" {
			t.Fatalf("round trip of %q (-got +want):\n%s", s, diff)
		}
		for i := 1; i < len(sel.List); i++ {
			if sel.List[i] <= sel.List[i-1] {
				t.Fatalf("list %v not ascending and distinct", sel.List)
			}
		}
	})
}
