package detect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/tda-dev/tda/plugins/detect/explain"
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/sdk"
)

// ExplainRequest is the request of action "explain".
type ExplainRequest struct {
	// Files are read one after another, in the lines' own time, as tda replay reads them.
	Files []LogFile `json:"files"`
	// Upstream are the detect processors (type "override" or "rules") that run before this
	// one in its pipeline, in order: each parses the lines first, as in the pipeline, and the
	// origins an override processor allows to declare override mode are allowed here too.
	Upstream []UpstreamProcessor `json:"upstream,omitempty"`
	// Output is the file the trace is written to (created or truncated, mode 0600). Without
	// one, every line of the trace is sent as a progress line (cut at sdk's progress limit).
	Output string `json:"output,omitempty"`
	// JSON writes one JSON object per input line (docs/detection.md) instead of a table.
	JSON bool `json:"json,omitempty"`
	// OnlyEvents leaves out the lines that are neither events nor ignored by the parser.
	OnlyEvents bool `json:"only_events,omitempty"`
	// Rule keeps only the lines whose event the rule matches, with its decision alone.
	Rule string `json:"rule,omitempty"`
}

// UpstreamProcessor is a detect processor before the rules processor in the pipeline: its
// address, type and JSON configuration (as the agent decodes its block).
type UpstreamProcessor struct {
	Address string          `json:"address"`
	Type    string          `json:"type"`
	Config  json.RawMessage `json:"config"`
}

// ExplainResult is the result of action "explain".
type ExplainResult struct {
	// Summary is the per-format and per-rule summary, as text.
	Summary string `json:"summary"`
	// Lines is how many input lines were read; Shown how many of them the trace holds.
	Lines int `json:"lines"`
	Shown int `json:"shown"`
}

func runExplain(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	p, err := rulesOf(component)
	if err != nil {
		return nil, err
	}
	var r ExplainRequest
	if err := decodeArgs(ActionExplain, req.Args, &r); err != nil {
		return nil, err
	}
	if err := checkFiles(ActionExplain, r.Files); err != nil {
		return nil, err
	}
	x, err := p.explainer(r.Upstream)
	if err != nil {
		return nil, err
	}
	if r.Rule != "" && !x.HasRule(r.Rule) {
		return nil, sdk.ActionInvalid("%s has no rule %q; its rules: %s", p.instance, r.Rule, strings.Join(x.RuleNames(), ", "))
	}
	out, closeOut, err := traceOutput(r.Output, req.Progress)
	if err != nil {
		return nil, err
	}
	res, err := explainFiles(ctx, x, r, out)
	if cerr := closeOut(); err == nil && cerr != nil {
		err = fmt.Errorf("write the trace to %s: %w", r.Output, cerr)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// explainer builds the explainer of the pipeline up to p: the parsers of the upstream
// processors, then p's own, and a fresh engine with p's rules and options.
func (p *Rules) explainer(upstream []UpstreamProcessor) (*explain.Explainer, error) {
	var parsers []explain.LineParser
	var origins []string
	for _, u := range upstream {
		var spec *sdk.Spec
		switch u.Type {
		case "override":
			spec = OverrideSpec()
		case "rules":
			spec = RulesSpec()
		default:
			return nil, sdk.ActionInvalid("%s: explain follows only the detect processors (override, rules), not %q", u.Address, u.Type)
		}
		c, diags := sdk.ParseConfig(spec, u.Config)
		if diags.HasErrors() {
			return nil, sdk.ActionInvalid("%s: %v", u.Address, diags.Err())
		}
		po, err := ParseOptions(c)
		if err != nil {
			return nil, sdk.ActionInvalid("%s: %v", u.Address, err)
		}
		parsers = append(parsers, parse.New(po))
		if u.Type == "override" {
			// In the pipeline an override processor judges a line's override by its own
			// allow_origins and hands the rules processor its record; explain feeds the engine
			// the lines themselves, so the engine must judge them as that processor would.
			origins = append(origins, c.StringList("allow_origins")...)
		}
	}
	// The processor the agent runs, so that its engine has the same rules and options; its
	// own parser is not used: explain parses first, to see what the parser reports.
	fresh, err := newRules(p.conf, p.res, origins)
	if err != nil {
		return nil, sdk.ActionInvalid("%v", err)
	}
	return explain.New(append(parsers, parse.New(p.parseOptions)), fresh.engine), nil
}

// traceOutput opens where the trace goes: the file named, or the progress lines.
func traceOutput(path string, progress func(string)) (io.Writer, func() error, error) {
	if path == "" {
		lw := &lineWriter{send: progress}
		return lw, lw.Close, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, sdk.ActionInvalid("explain: open the output: %v", err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	return bw, func() error {
		err := bw.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

// explainFiles writes the trace of the files to out and returns the summary.
func explainFiles(ctx context.Context, x *explain.Explainer, r ExplainRequest, out io.Writer) (ExplainResult, error) {
	var w explain.Writer
	if r.JSON {
		w = explain.NewJSON(out)
	} else {
		w = explain.NewTable(out)
	}
	var res ExplainResult
	for _, file := range r.Files {
		name := file.name()
		f, err := os.Open(file.Path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			if errors.Is(err, fs.ErrNotExist) {
				return res, sdk.ActionNotFound("%s: %v", name, err)
			}
			return res, sdk.ActionInvalid("%s: %v", name, err)
		}
		err = explain.ReadLines(f, func(n int, line []byte) error {
			res.Lines++
			if err := cancelled(ctx, res.Lines); err != nil {
				return err
			}
			rec := x.Explain(name, n, line)
			if !explain.Shown(&rec, r.OnlyEvents, r.Rule) {
				return nil
			}
			res.Shown++
			return w.Write(&rec)
		})
		f.Close()
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
	}
	x.Finish()
	if err := w.Flush(); err != nil {
		return res, err
	}
	var sum bytes.Buffer
	if err := x.WriteSummary(&sum, r.Rule); err != nil {
		return res, err
	}
	res.Summary = sum.String()
	return res, nil
}

// lineWriter sends what is written to it line by line (without the newline). A line longer
// than maxPendingLine is sent in pieces of that size, so that memory stays bounded.
type lineWriter struct {
	send    func(string)
	pending []byte
}

const maxPendingLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		w.pending = append(w.pending, seg...)
		for len(w.pending) > maxPendingLine {
			w.send(string(w.pending[:maxPendingLine]))
			w.pending = append(w.pending[:0], w.pending[maxPendingLine:]...)
		}
		if i < 0 {
			break
		}
		w.send(string(w.pending))
		w.pending = w.pending[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Close sends the last line when it has no newline.
func (w *lineWriter) Close() error {
	if len(w.pending) > 0 {
		w.send(string(w.pending))
		w.pending = nil
	}
	return nil
}
