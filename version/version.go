// Package version holds the version of tda and its bundled plugins, set at build time with
// -ldflags "-X github.com/tda-dev/tda/version.Version=... -X ...Commit=...".
package version

// Version is the release version.
var Version = "0.1.0-dev"

// Commit is the git commit the binaries were built from.
var Commit = "unknown"

// String returns "Version (Commit)".
func String() string {
	return Version + " (" + Commit + ")"
}
