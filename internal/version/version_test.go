package version

import (
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromBuildInfo(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	checkout := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/nvidia/adbot", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-06T09:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	dirty := *checkout
	dirty.Settings = append([]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, checkout.Settings[:3]...)
	installed := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/nvidia/adbot", Version: "v0.4.1"}}
	for _, tc := range []struct {
		name      string
		bi        *debug.BuildInfo
		linked    string
		wantShort string
		wantLong  string
	}{
		{"checkout", checkout, "", "0123456789ab",
			"adbot 0123456789ab\nmodule  github.com/nvidia/adbot\nversion (devel)\ncommit  " + rev + " (2026-12-06T09:00:00Z)\ngo      go1.26.0\n"},
		{"dirty checkout", &dirty, "", "0123456789ab-dirty",
			"adbot 0123456789ab-dirty\nmodule  github.com/nvidia/adbot\nversion (devel)\ncommit  " + rev + " (2026-12-06T09:00:00Z, with uncommitted changes)\ngo      go1.26.0\n"},
		{"go install", installed, "", "v0.4.1",
			"adbot v0.4.1\nmodule  github.com/nvidia/adbot\nversion v0.4.1\ncommit  unknown (not built from a git checkout)\ngo      go1.26.0\n"},
		{"linked version", checkout, "v1.2.3", "v1.2.3",
			"adbot v1.2.3\nmodule  github.com/nvidia/adbot\nversion v1.2.3\ncommit  " + rev + " (2026-12-06T09:00:00Z)\ngo      go1.26.0\n"},
		{"no build info", nil, "", "dev",
			"adbot dev\nmodule  github.com/nvidia/adbot\nversion (devel)\ncommit  unknown (not built from a git checkout)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fromBuildInfo(tc.bi, tc.linked)
			if diff := cmp.Diff(b.Short(), tc.wantShort); diff != "" {
				t.Errorf("Short (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(b.Long(), tc.wantLong); diff != "" {
				t.Errorf("Long (-got +want):\n%s", diff)
			}
		})
	}
}

// TestRead: a test binary has build info; Read must find the module.
func TestRead(t *testing.T) {
	if b := Read(); b.GoVersion == "" || b.Short() == "" {
		t.Errorf("Read() = %+v", b)
	}
}
