package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diagnostics as
//
//	Error: Unsupported argument
//	  at configs/agent.hcl:12,3-8
//	    11 | source "file" "hosts" {
//	    12 |   pathz = ["x"]
//	       |   ^^^^^
//	  An argument named "pathz" is not expected here. Did you mean "paths"?
//
// in file order, errors and warnings alike.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	sorted := append(hcl.Diagnostics(nil), diags...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i].Subject, sorted[j].Subject
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
			for _, line := range strings.Split(wrap(d.Detail, 92), "\n") {
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

func wrap(s string, width int) string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		words := strings.Fields(para)
		line := ""
		for _, wd := range words {
			if line != "" && len(line)+1+len(wd) > width {
				out = append(out, line)
				line = wd
				continue
			}
			if line != "" {
				line += " "
			}
			line += wd
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
