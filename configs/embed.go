// Package configs holds the configurations shipped with tda. agent.hcl is embedded in the
// binary: `tda run` without -config runs it.
package configs

import _ "embed"

// Default is configs/agent.hcl.
//
//go:embed agent.hcl
var Default []byte
