// Package version says which adbot this is: the module version and the
// commit it was built from, as the Go toolchain records them in the binary
// (runtime/debug.ReadBuildInfo).
package version

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// Version is set at link time (-ldflags "-X github.com/nvidia/adbot/internal/version.Version=v1.2.3");
// it then wins over the module version the build recorded.
var Version = ""

// Build is what the binary knows about its own build.
type Build struct {
	// Module is the main module's path (github.com/nvidia/adbot).
	Module string `json:"module"`
	// Version is the module version: a tag or pseudo-version when built with
	// `go install module@version`, "(devel)" for a build in a checkout.
	Version string `json:"version"`
	// Revision is the VCS commit of a build in a checkout ("" when unknown).
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time, RFC 3339.
	Time string `json:"time,omitempty"`
	// Modified is true when the checkout had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go"`
}

// Read returns this binary's build.
func Read() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuildInfo(bi, Version)
}

// fromBuildInfo turns the toolchain's record into a Build; linked, when set,
// is the version given at link time.
func fromBuildInfo(bi *debug.BuildInfo, linked string) Build {
	b := Build{Module: "github.com/nvidia/adbot", Version: "(devel)"}
	if bi != nil {
		b.GoVersion = bi.GoVersion
		if bi.Main.Path != "" {
			b.Module = bi.Main.Path
		}
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if linked != "" {
		b.Version = linked
	}
	return b
}

// Short is the version in one word: the module version when it is a real
// one, else the commit (12 digits, "-dirty" when modified), else "dev".
func (b Build) Short() string {
	if b.Version != "" && b.Version != "(devel)" {
		return b.Version
	}
	if b.Revision != "" {
		rev := b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if b.Modified {
			rev += "-dirty"
		}
		return rev
	}
	return "dev"
}

// Long is what `adbot version` prints: module, version, commit and toolchain.
func (b Build) Long() string {
	var s strings.Builder
	fmt.Fprintf(&s, "adbot %s\nmodule  %s\n", b.Short(), b.Module)
	fmt.Fprintf(&s, "version %s\n", b.Version)
	switch {
	case b.Revision == "":
		s.WriteString("commit  unknown (not built from a git checkout)\n")
	case b.Modified:
		fmt.Fprintf(&s, "commit  %s (%s, with uncommitted changes)\n", b.Revision, orUnknown(b.Time))
	default:
		fmt.Fprintf(&s, "commit  %s (%s)\n", b.Revision, orUnknown(b.Time))
	}
	if b.GoVersion != "" {
		fmt.Fprintf(&s, "go      %s\n", b.GoVersion)
	}
	return s.String()
}

func orUnknown(t string) string {
	if t == "" {
		return "time unknown"
	}
	return t
}

// String returns the version in one word (see Build.Short): for user
// agents, log lines and runner presence.
func String() string { return Read().Short() }

// Command runs `adbot version [--json]`.
func Command(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	b := Read()
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	_, err := io.WriteString(os.Stdout, b.Long())
	return err
}
