package parse

import (
	"bytes"
	"encoding/json"
	"math"
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

// structuredTime finds the time of a JSON line, a logfmt line or a java.util.logging header,
// formats the header scan gives no time.
func (p *Parser) structuredTime(line []byte, format string) (time.Time, bool) {
	switch format {
	case FormatJSON:
		for _, k := range jsonTimeKeys {
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
			// A number, also in exponent form (GELF: 1.725547337613E9).
			e := 0
			for e < len(v) && (isDigit(v[e]) || v[e] == '.' || v[e] == 'e' || v[e] == 'E' || v[e] == '+' || v[e] == '-') {
				e++
			}
			if bytes.IndexAny(v[:e], "eE") >= 0 {
				return expTime(v[:e])
			}
			return ParseAny(string(v[:e]), p.loc)
		}
	case FormatPlain:
		// java.util.logging's header line, whose message is on the next line.
		if len(line) > 0 && line[0] >= 'A' && line[0] <= 'S' {
			if t, ok := julTime(line, p.loc); ok {
				return t, true
			}
		}
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

// expTime reads epoch seconds in exponent form (GELF's `1.725547337613E9`), rounded to the
// millisecond the format carries, which float64 cannot hold exactly.
func expTime(b []byte) (time.Time, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f <= 0 || f >= 1e11 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(math.Round(f * 1000))).UTC(), true
}

// Keys of structured-logging JSON (Spring Boot 3.4's ecs, logstash and gelf formats,
// logstash-logback-encoder, log4j2's JsonLayout, python-json-logger, ECS nested objects).
var (
	jsonMsgKeys    = []string{`"message":`, `"short_message":`, `"msg":`}
	jsonLoggerKeys = []string{`"log.logger":`, `"logger_name":`, `"_log_logger":`, `"loggerName":`, `"logger":`, `"name":`}
	// jsonTimeKeys: also log4j2's JsonLayout (timeMillis) and python-json-logger (asctime).
	jsonTimeKeys  = []string{`"ts":`, `"time":`, `"timestamp":`, `"@timestamp":`, `"timeMillis":`, `"asctime":`}
	jsonLevelKeys = []string{`"log.level":`, `"level":`, `"_level_name":`, `"levelname":`}
)

// detectStructured recognises the message inside a structured-logging JSON line like a plain
// line's (SQL, Flyway, Liquibase, Alembic, Spring Security, audit lines). The message is
// found by a byte search and decoded only when it has escapes, so a JSON line that is no
// event costs a few searches and no allocation.
func (p *Parser) detectStructured(line []byte, r *result) {
	if len(p.plainWords) == 0 && !mayHoldEvent(line) {
		return
	}
	var msg []byte
	for _, k := range jsonMsgKeys {
		if v, ok := jsonValue(line, k); ok {
			msg = v
			break
		}
	}
	if len(msg) < 2 || msg[0] != '"' {
		return
	}
	if bytes.IndexByte(msg, '\\') >= 0 {
		var s string
		if json.Unmarshal(msg, &s) != nil {
			return
		}
		msg = []byte(s)
	} else {
		msg = msg[1 : len(msg)-1]
	}
	// The logger named anywhere in the line is the SQL-echo hint.
	detectMessage(line, msg, false, r)
	if r.event == "" {
		p.detectAudit(msg, r)
	}
	if r.event == "" {
		return
	}
	r.format = FormatJSON
	if logger := jsonText(line, jsonLoggerKeys); len(logger) > 0 {
		r.set(FieldLogger, clip(string(logger)))
	}
	if level := jsonText(line, jsonLevelKeys); len(level) > 0 {
		r.set(FieldLevel, clip(string(level)))
	}
}

// mayHoldEvent is a cheap test that a line could hold a framework phrase (one of the phrase
// letters), an audit word with an underscore, or a lower-case delete. (With audit_events
// words without an underscore, every structured line is looked at.)
func mayHoldEvent(line []byte) bool {
	for _, a := range phraseAnchors {
		if bytes.IndexByte(line, a) >= 0 {
			return true
		}
	}
	return bytes.IndexByte(line, '_') >= 0 || bytes.Contains(line, []byte("delete"))
}

// jsonText returns the first of keys' values that is a string without escapes, unquoted.
func jsonText(line []byte, keys []string) []byte {
	for _, k := range keys {
		if v, ok := jsonValue(line, k); ok && len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0 {
			return v[1 : len(v)-1]
		}
	}
	return nil
}

// jsonValue finds `key` (written with its quotes and colon) in a JSON line and returns the
// raw value after it: a quoted string with its quotes, or the bytes of a number or literal.
// It is a byte search, not a parser: the first occurrence wins, at any depth; a key inside a
// string value cannot match because its quotes are escaped there.
func jsonValue(line []byte, key string) ([]byte, bool) {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return nil, false
	}
	v := line[i+len(key):]
	j := 0
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	v = v[j:]
	if len(v) == 0 {
		return nil, false
	}
	if v[0] != '"' {
		e := 0
		for e < len(v) && v[e] != ',' && v[e] != '}' && v[e] != ' ' {
			e++
		}
		return v[:e], e > 0
	}
	e := skipQuoted(v, 0)
	if e > len(v) || v[e-1] != '"' || e < 2 {
		return nil, false
	}
	return v[:e], true
}
