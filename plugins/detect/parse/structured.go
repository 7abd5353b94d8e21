package parse

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"time"
)

// detectJSON handles JSON lines with an "event" member naming an audit event.
func (p *Parser) detectJSON(line []byte, r *result) {
	if !bytes.Contains(line, []byte(`"event"`)) || (bytes.IndexByte(line, '_') < 0 && len(p.plainWords) == 0) {
		return
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return
	}
	evName, _ := m[FieldEvent].(string)
	word, ok := p.words[evName]
	if !ok {
		return
	}
	r.event, r.via, r.format = word, ViaAudit, FormatJSON
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			r.set(k, clip(v))
		case json.Number:
			r.set(k, v.String())
		case bool:
			r.set(k, strconv.FormatBool(v))
		}
	}
	for _, k := range []string{"ts", "time", "timestamp", "@timestamp"} {
		if s := r.get(k); s != "" {
			r.set("ts", s)
			break
		}
	}
}

// structuredTime finds the time of a JSON or logfmt line that is not an event.
func (p *Parser) structuredTime(line []byte, format string) (time.Time, bool) {
	switch format {
	case FormatJSON:
		for _, k := range []string{`"ts":`, `"time":`, `"timestamp":`, `"@timestamp":`} {
			i := bytes.Index(line, []byte(k))
			if i < 0 {
				continue
			}
			v := bytes.TrimLeft(line[i+len(k):], " ")
			if len(v) > 0 && v[0] == '"' {
				v = v[1:]
				if e := bytes.IndexByte(v, '"'); e >= 0 {
					return ParseAny(string(v[:e]), p.loc)
				}
				continue
			}
			e := 0
			for e < len(v) && (isDigit(v[e]) || v[e] == '.') {
				e++
			}
			return ParseAny(string(v[:e]), p.loc)
		}
	case FormatPlain:
		// logfmt: the first token is a key=value pair.
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			sp = len(line)
		}
		if bytes.IndexByte(line[:sp], '=') < 0 {
			return time.Time{}, false
		}
		for _, k := range []string{"ts=", "time="} {
			i := bytes.Index(line, []byte(k))
			if i < 0 || (i > 0 && line[i-1] != ' ') {
				continue
			}
			v := line[i+len(k):]
			if len(v) > 0 && v[0] == '"' {
				v = v[1:]
				if e := bytes.IndexByte(v, '"'); e >= 0 {
					v = v[:e]
				}
			} else if e := bytes.IndexByte(v, ' '); e >= 0 {
				v = v[:e]
			}
			return ParseAny(string(v), p.loc)
		}
	}
	return time.Time{}, false
}
