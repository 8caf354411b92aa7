package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/pflag"
)

// Set with -ldflags "-X main.buildVersion=... -X main.buildRevision=...
// -X main.buildTime=... -X main.buildModified=true" by builds the go
// command cannot stamp with VCS metadata: the Containerfile's (its context
// leaves .git out) and any in a git worktree (the go command looks for a
// .git directory only). Empty otherwise.
var buildVersion, buildRevision, buildTime, buildModified string

// versionInfo is what `whisperer version` prints.
type versionInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// readVersion reads the build info the go command stamped: the main
// module's version (a tag, or a pseudo-version from the commit since Go
// 1.24) and the vcs.* settings. The -X values fill what it lacks; an
// explicitly given version wins over the stamped one.
func readVersion() versionInfo {
	v := versionInfo{Version: "devel", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified, _ = strconv.ParseBool(s.Value)
			}
		}
	}
	if buildVersion != "" {
		v.Version = buildVersion
	}
	if v.Revision == "" {
		v.Revision = buildRevision
		v.Modified = buildModified == "true"
	}
	if v.Time == "" {
		v.Time = buildTime
	}
	return v
}

func version(_ context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	v := readVersion()
	if wantJSON(fs) {
		return printJSON(e.stdout, v)
	}
	fmt.Fprintf(e.stdout, "whisperer %s\n", v.Version)
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	if v.Revision != "" {
		rev := v.Revision
		if v.Modified {
			rev += " (modified)"
		}
		fmt.Fprintf(tw, "revision\t%s\n", rev)
	}
	if v.Time != "" {
		fmt.Fprintf(tw, "commit time\t%s\n", v.Time)
	}
	fmt.Fprintf(tw, "go\t%s %s\n", v.GoVersion, v.Platform)
	return tw.Flush()
}
