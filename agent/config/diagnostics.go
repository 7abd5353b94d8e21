package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/mitchellh/go-wordwrap"
)

// UnusedBlock marks the warning about a block no pipeline uses (hcl.Diagnostic.Extra).
type UnusedBlock struct{ Address string }

// UndefinedReference marks the error about a reference to a block that does not exist.
type UndefinedReference struct{ Ref Ref }

// Arrange orders diagnostics as they are shown: errors first, then warnings, each in file
// order. While there are errors, the unused-block warnings are left out: a pipeline that did
// not decode, or a reference that did not resolve, leaves its blocks unused, so those warnings
// would only repeat the error.
func Arrange(diags hcl.Diagnostics) hcl.Diagnostics {
	hasErrors := diags.HasErrors()
	out := make(hcl.Diagnostics, 0, len(diags))
	for _, d := range diags {
		if _, unused := d.Extra.(UnusedBlock); unused && hasErrors {
			continue
		}
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity == hcl.DiagError
		}
		a, b := out[i].Subject, out[j].Subject
		switch {
		case a == nil && b == nil:
			return false
		case a == nil:
			return true
		case b == nil:
			return false
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
	return out
}

// WriteDiagnostics prints diagnostics, arranged by Arrange, as
//
//	Error: Unsupported argument
//	  at configs/agent.hcl:12,3-8
//	    11 | source "file" "hosts" {
//	    12 |   pathz = ["x"]
//	       |   ^^^^^
//	  An argument named "pathz" is not expected here. Did you mean "paths"?
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	sorted := Arrange(diags)
	for i, d := range sorted {
		if i > 0 {
			fmt.Fprintln(w)
		}
		sev := "Error"
		if d.Severity == hcl.DiagWarning {
			sev = "Warning"
		}
		fmt.Fprintf(w, "%s: %s\n", sev, d.Summary)
		if d.Subject != nil {
			fmt.Fprintf(w, "  at %s\n", d.Subject.String())
			if f, ok := files[d.Subject.Filename]; ok && f != nil {
				writeSnippet(w, f.Bytes, *d.Subject)
			}
		}
		if d.Detail != "" {
			for _, line := range strings.Split(wordwrap.WrapString(d.Detail, 92), "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
	}
}

func writeSnippet(w io.Writer, src []byte, rng hcl.Range) {
	lines := splitLines(src)
	first := rng.Start.Line - 1
	if first < 1 {
		first = 1
	}
	last := rng.Start.Line
	width := len(fmt.Sprint(last))
	for n := first; n <= last && n <= len(lines); n++ {
		fmt.Fprintf(w, "    %*d | %s\n", width, n, strings.TrimRight(lines[n-1], "\r"))
	}
	if rng.Start.Line > len(lines) {
		return
	}
	line := lines[rng.Start.Line-1]
	start := rng.Start.Column - 1
	end := len(line)
	if rng.End.Line == rng.Start.Line {
		end = rng.End.Column - 1
	}
	if start < 0 || start > len(line) {
		return
	}
	if end <= start {
		end = start + 1
	}
	if end > len(line) {
		end = len(line)
		if end <= start {
			end = start + 1
		}
	}
	pad := strings.Map(func(r rune) rune {
		if r == '\t' {
			return '\t'
		}
		return ' '
	}, line[:start])
	fmt.Fprintf(w, "    %*s | %s%s\n", width, "", pad, strings.Repeat("^", end-start))
}

func splitLines(src []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
