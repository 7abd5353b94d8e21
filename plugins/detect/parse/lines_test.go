package parse

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// lineTable is one testdata/lines/*.json file (see its README.md).
type lineTable struct {
	Options struct {
		GunicornFormats []string `json:"gunicorn_formats"`
		TrustedProxies  []string `json:"trusted_proxies"`
		Routes          []struct {
			Method string            `json:"method"`
			Path   string            `json:"path"`
			Status []int             `json:"status"`
			Event  string            `json:"event"`
			Fields map[string]string `json:"fields"`
		} `json:"routes"`
		Timezone string `json:"timezone"`
	} `json:"options"`
	Cases []struct {
		Name   string   `json:"name"`
		Source string   `json:"source"`
		Line   string   `json:"line"`
		Before []string `json:"before"`
		Time   string   `json:"time"`
		Fields string   `json:"fields"`
	} `json:"cases"`
}

func (lt *lineTable) options(t testing.TB) Options {
	var o Options
	for _, f := range lt.Options.GunicornFormats {
		af, err := CompileGunicornFormat(f)
		if err != nil {
			t.Fatalf("format %q: %v", f, err)
		}
		o.AccessFormats = append(o.AccessFormats, af)
	}
	tp, err := ParseTrustedProxies(lt.Options.TrustedProxies)
	if err != nil {
		t.Fatal(err)
	}
	o.TrustedProxies = tp
	for _, r := range lt.Options.Routes {
		rt, err := NewRoute(r.Method, r.Path, r.Status, r.Event, r.Fields)
		if err != nil {
			t.Fatalf("route %s: %v", r.Path, err)
		}
		o.Routes = append(o.Routes, rt)
	}
	if lt.Options.Timezone != "" {
		loc, err := time.LoadLocation(lt.Options.Timezone)
		if err != nil {
			t.Fatal(err)
		}
		o.Location = loc
	}
	return o
}

func loadLineTables(t testing.TB) map[string]*lineTable {
	files, err := filepath.Glob(filepath.Join("testdata", "lines", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/lines: %v", err)
	}
	out := map[string]*lineTable{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lt := &lineTable{}
		if err := json.Unmarshal(b, lt); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = lt
	}
	return out
}

// linePrev is the time of the line every case's origin has seen before its own.
var linePrev = utc("2026-01-02T03:04:05Z")

// applyCase runs a case's earlier lines and then its line through a fresh parser.
func applyCase(p *Parser, before []string, line string) sdk.Event {
	first := sdk.Event{Kind: sdk.KindLog, Origin: "o", Line: []byte("[2026-01-02 03:04:05,000] INFO in x: hello")}
	p.Apply(&first)
	for _, b := range before {
		ev := sdk.Event{Kind: sdk.KindLog, Origin: "o", Line: []byte(b)}
		p.Apply(&ev)
	}
	ev := sdk.Event{Kind: sdk.KindLog, Origin: "o", Line: []byte(line)}
	p.Apply(&ev)
	return ev
}

// TestLines checks every line of testdata/lines against the time and fields it must yield.
func TestLines(t *testing.T) {
	for file, lt := range loadLineTables(t) {
		opts := lt.options(t)
		for _, c := range lt.Cases {
			t.Run(file+"/"+c.Name, func(t *testing.T) {
				ev := applyCase(New(opts), c.Before, c.Line)
				if want := utc(c.Time); !ev.Time.Equal(want) {
					t.Errorf("time %s, want %s", ev.Time.Format(time.RFC3339Nano), c.Time)
				}
				if got := fieldsString(ev.Fields); got != c.Fields {
					t.Errorf("fields\n got %q\nwant %q", got, c.Fields)
				}
			})
		}
	}
}
