package gpu_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/internal/gpu/gputest"
)

func TestParseMock(t *testing.T) {
	tests := []struct {
		in      string
		want    gpu.MockSpec
		wantErr string // a part of the error; every error also names the accepted form
	}{
		{in: "mock:8xH100-80GB", want: gpu.MockSpec{Count: 8, Model: "H100", MemoryGB: 80}},
		{in: "mock:4xA100-40GB", want: gpu.MockSpec{Count: 4, Model: "A100", MemoryGB: 40}},
		{in: "mock:2xH200-141GB", want: gpu.MockSpec{Count: 2, Model: "H200", MemoryGB: 141}},
		{in: "mock:1xA30-24GB", want: gpu.MockSpec{Count: 1, Model: "A30", MemoryGB: 24}},
		{in: "mock:8xB200-180GB", want: gpu.MockSpec{Count: 8, Model: "B200", MemoryGB: 180}},
		{in: " MOCK: 2Xh100-94gb ", want: gpu.MockSpec{Count: 2, Model: "H100", MemoryGB: 94}},
		{in: "mock", wantErr: "no GPUs given"},
		{in: "mock:", wantErr: "no count"},
		{in: "mock:H100-80GB", wantErr: "no count"},
		{in: "mock:xH100-80GB", wantErr: `"" is not a GPU count`},
		{in: "mock:0xH100-80GB", wantErr: `"0" is not a GPU count from 1 to 64`},
		{in: "mock:65xH100-80GB", wantErr: `"65" is not a GPU count`},
		{in: "mock:+8xH100-80GB", wantErr: `"+8" is not a GPU count`},
		{in: "mock:eightxH100-80GB", wantErr: `"EIGHT" is not a GPU count`},
		{in: "mock:8xV100-32GB", wantErr: `"V100" is not a mocked GPU model`},
		{in: "mock:8xH100", wantErr: "no memory size"},
		{in: "mock:8xH100-80", wantErr: `"80" is not a memory size`},
		{in: "mock:8xH100-0GB", wantErr: `"0GB" is not a memory size`},
		{in: "mock:8xH100-80GiB", wantErr: `"80GIB" is not a memory size`},
		{in: "mock:8xH100-SXM5-80GB", wantErr: `"H100-SXM5" is not a mocked GPU model`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := gpu.ParseMock(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "want mock:<count>x<model>-<memory>GB, e.g. mock:8xH100-80GB") {
					t.Fatalf("err = %v, want one saying %q and naming the accepted form", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			sel, err := gpu.ParseSelection(tt.in)
			if err != nil {
				t.Fatalf("ParseSelection: %v", err)
			}
			if diff := cmp.Diff(sel, gpu.Selection{Mock: &tt.want}); diff != "" {
				t.Errorf("ParseSelection (-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzParseMock(f *testing.F) {
	for _, s := range []string{"mock:8xH100-80GB", "mock:2xh200-141gb", "mock:x-GB", "mock:1xA100-", "mock:99xB200-1024GB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := gpu.ParseMock(s)
		if err != nil {
			return
		}
		again, err := gpu.ParseMock(m.String())
		if err != nil {
			t.Fatalf("ParseMock(%q).String() = %q does not parse: %v", s, m.String(), err)
		}
		if again != m {
			t.Fatalf("round trip of %q: %+v, want %+v", s, again, m)
		}
	})
}

// TestMockInventory: a mock selection reads as idle, free GPUs of the
// spec's count, model and memory, whatever library Open is handed.
func TestMockInventory(t *testing.T) {
	type dev struct {
		Index       int
		Name, UUID  string
		MemTotalMiB uint64
		Free        bool
	}
	tests := []struct {
		spec string
		want []dev
	}{
		{"mock:2xH100-80GB", []dev{
			{0, "NVIDIA H100 80GB HBM3 (mock)", "GPU-00000000-0000-4000-8000-000000000000", 81920, true},
			{1, "NVIDIA H100 80GB HBM3 (mock)", "GPU-00000000-0000-4000-8000-000000000001", 81920, true},
		}},
		{"mock:1xA100-40GB", []dev{{0, "NVIDIA A100-SXM4-40GB (mock)", "GPU-00000000-0000-4000-8000-000000000000", 40960, true}}},
		{"mock:1xA100-80GB", []dev{{0, "NVIDIA A100-SXM4-80GB (mock)", "GPU-00000000-0000-4000-8000-000000000000", 81920, true}}},
		{"mock:1xH200-141GB", []dev{{0, "NVIDIA H200 141GB HBM3e (mock)", "GPU-00000000-0000-4000-8000-000000000000", 144384, true}}},
		{"mock:1xB200-180GB", []dev{{0, "NVIDIA B200 180GB HBM3e (mock)", "GPU-00000000-0000-4000-8000-000000000000", 184320, true}}},
		{"mock:1xA30-24GB", []dev{{0, "NVIDIA A30-PCIE-24GB (mock)", "GPU-00000000-0000-4000-8000-000000000000", 24576, true}}},
		{"mock:1xH100-94GB", []dev{{0, "NVIDIA H100 94GB (mock)", "GPU-00000000-0000-4000-8000-000000000000", 96256, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			sel, err := gpu.ParseSelection(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			// The library handed in is not used: a mock needs none.
			h, err := gpu.Open(gputest.Missing(), sel)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if got := h.Mocked(); got != tt.spec {
				t.Errorf("Mocked() = %q, want %q", got, tt.spec)
			}
			devs, err := h.Inventory(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []dev
			for _, d := range devs {
				got = append(got, dev{d.Index, d.Name, d.UUID, d.MemTotal >> 20, d.Free()})
				if d.MemUsed >= gpu.FreeMemoryLimit || d.Utilization.GPU != 0 || d.MemFree != d.MemTotal {
					t.Errorf("GPU %d: used %d, free %d of %d, %d%% utilized; want idle", d.Index, d.MemUsed, d.MemFree, d.MemTotal, d.Utilization.GPU)
				}
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("devices (-got +want):\n%s", diff)
			}
		})
	}
}

// TestInventoryFromEnvMock: the one-shot Inventory (adbot preflight's)
// honours a mock ADBOT_GPUS and warns once that the GPUs are mocked.
func TestInventoryFromEnvMock(t *testing.T) {
	t.Setenv(gpu.EnvGPUs, "mock:8xH100-80GB")
	var buf bytes.Buffer
	ctx := zerolog.New(&buf).WithContext(context.Background())
	devs, err := gpu.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gpu.FreeIndices(devs), []int{0, 1, 2, 3, 4, 5, 6, 7}); diff != "" {
		t.Errorf("free (-got +want):\n%s", diff)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"warn"`) || !strings.Contains(lines[0], "GPUs are mocked") || !strings.Contains(lines[0], "mock:8xH100-80GB") {
		t.Errorf("log = %q, want one warning that the GPUs are mocked", buf.String())
	}

	t.Setenv(gpu.EnvGPUs, "mock:8xH100")
	if _, err := gpu.Inventory(ctx); err == nil || !strings.Contains(err.Error(), "mock:8xH100-80GB") {
		t.Errorf("bad spec: %v, want an error naming the accepted form", err)
	}
}
