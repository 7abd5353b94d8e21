package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/hclspec"
)

// decodeHostLevel reads the host-level attributes every component block may carry:
// call_timeout and isolate (all) and max_attempts (sinks and processors).
func (cfg *Config) decodeHostLevel(c *Component, content *hcl.BodyContent) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if a, ok := content.Attributes["call_timeout"]; ok {
		var d time.Duration
		ds := decodeDuration(a.Expr, cfg.evalCtx, &d)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			if d < MinCallTimeout {
				diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid call_timeout",
					"call_timeout must be a duration of at least 10ms such as \"60s\": it bounds every call to the plugin, and a call past it restarts the plugin."))
			}
			c.CallTimeout = d
		}
	}
	if a, ok := content.Attributes["isolate"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, cfg.evalCtx, &c.Isolate)...)
	}
	if a, ok := content.Attributes["max_attempts"]; ok {
		var n int
		ds := gohcl.DecodeExpression(a.Expr, cfg.evalCtx, &n)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			if n < 1 {
				diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid max_attempts",
					"max_attempts must be at least 1: it is how often one batch may fail, crash or hang the plugin before it becomes a dead letter (default %d).",
					DefaultMaxAttempts))
			}
			c.MaxAttempts = n
		}
	}
	return diags
}

var bufferSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "max_size"}, {Name: "when_full"}, {Name: "max_disk_size"}}}

var whenFullValues = []string{WhenFullBlock, WhenFullSpill, WhenFullDrop}

// decodeBuffer reads a sink's `buffer` block.
func (cfg *Config) decodeBuffer(blk *hcl.Block, s *SinkSettings) hcl.Diagnostics {
	content, diags := blk.Body.Content(bufferSchema)
	sizes := []struct {
		name string
		dst  *int64
	}{{"max_size", &s.Buffer.MaxSize}, {"max_disk_size", &s.Buffer.MaxDiskSize}}
	for _, sz := range sizes {
		a, ok := content.Attributes[sz.name]
		if !ok {
			continue
		}
		var v string
		ds := gohcl.DecodeExpression(a.Expr, cfg.evalCtx, &v)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			continue
		}
		n, err := ParseSize(v)
		if err == nil && n <= 0 {
			err = fmt.Errorf("the size must be positive")
		}
		if err != nil {
			diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid size",
				"%s: %v. Write a size such as \"16MiB\" or \"1GiB\" (units B, KiB, MiB, GiB, TiB).", sz.name, err))
			continue
		}
		*sz.dst = n
	}
	if a, ok := content.Attributes["when_full"]; ok {
		ds := gohcl.DecodeExpression(a.Expr, cfg.evalCtx, &s.Buffer.WhenFull)
		diags = append(diags, ds...)
		if !ds.HasErrors() && s.Buffer.WhenFull != WhenFullBlock && s.Buffer.WhenFull != WhenFullSpill &&
			s.Buffer.WhenFull != WhenFullDrop {
			diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Unsupported value",
				"when_full must be \"block\" (hold the pipeline), \"spill\" (to disk, up to max_disk_size) or \"drop\" (count and report).%s",
				didYouMean(s.Buffer.WhenFull, whenFullValues)))
		}
	}
	if a, ok := content.Attributes["max_disk_size"]; ok && s.Buffer.WhenFull != "" &&
		s.Buffer.WhenFull != WhenFullSpill && s.Queue != sdk.QueueDurable {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Unused max_disk_size",
			Detail: fmt.Sprintf("max_disk_size bounds the disk of when_full = \"spill\" or queue = \"durable\"; with when_full = %q and a memory queue nothing goes to disk.",
				s.Buffer.WhenFull),
			Subject: a.Expr.Range().Ptr()})
	}
	return diags
}

var sizeUnits = []struct {
	suffix string
	factor int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// ParseSize reads a size in bytes such as "16MiB", "1GiB", "512KiB", "4096B" or "4096".
func ParseSize(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, factor = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", orig)
	}
	if n < 0 {
		return 0, fmt.Errorf("the size must be positive")
	}
	if n > (1<<62)/factor {
		return 0, fmt.Errorf("the size is too large")
	}
	return n * factor, nil
}
