package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version is the release this binary was built from; `make build` sets it
// with -ldflags "-X main.version=...". Empty means: read the build info.
var version string

// versionCommand is "neolink version".
func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the version of neolink and of Go it was built with",
		about: `Version prints one line: the neolink version (the module version, or the
git revision for a build from a checkout, "+dirty" if it had uncommitted
changes), the NEO protocol version, and the Go version and platform.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				printVersion(os.Stdout)
				return nil
			}
		},
	}
}

// printVersion writes the version line.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "neolink %s (NEO protocol 5) %s %s/%s\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildVersion returns version, or what the build info knows.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		return "devel-" + rev[:min(len(rev), 12)] + dirty
	}
	if v == "" {
		return "(devel)"
	}
	return v
}
