package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// runVersion is `tokend version`: which build is running, for bug reports.
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionString(info, ok))
	return nil
}

// versionString reads the version the go command stamped into the binary:
// the module version under `go install tokend@v1.2.3`, and the commit when
// built in a checkout with VCS stamping on. Anything else is "devel".
func versionString(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "tokend devel " + runtime.Version()
	}
	out := "tokend devel"
	if v := info.Main.Version; v != "" && v != "(devel)" {
		out = "tokend " + v
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if revision != "" {
		out += " (commit " + revision[:min(len(revision), 12)] + modified + ")"
	}
	return out + " " + info.GoVersion
}
