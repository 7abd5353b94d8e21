package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/ops"
)

type testBody struct {
	By     string            `json:"by"`
	Reason string            `json:"reason"`
	Count  int               `json:"count"`
	Detail map[string]string `json:"detail"`
	List   []string          `json:"list"`
}

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		body, problem string
	}{
		{`{"by":"alice","reason":"r"}`, ""},
		{" \n{\"by\":\"alice\",\"detail\":{\"a\":\"1\",\"b\":\"2\"},\"list\":[\"x\",\"x\"]}\n ", ""},
		{`{}`, ""},
		{``, "the body is empty"},
		{`   `, "the body is empty"},
		{`null`, "the body is null"},
		{`[]`, "the body is an array"},
		{`"x"`, "the body is a JSON value"},
		{`17`, "the body is a JSON value"},
		{`{"by":"alice"} {"by":"bob"}`, "data after the JSON object"},
		{`{"by":"alice"}}`, "data after the JSON object"},
		{`{"by":"alice"}x`, "data after the JSON object"},
		{`{"by":"alice"}null`, "data after the JSON object"},
		{`{"by":"alice","by":"bob"}`, `the key "by" appears twice`},
		{`{"by":"alice","BY":"bob"}`, `the key "BY" appears twice`},
		{`{"detail":{"a":"1","a":"2"}}`, `the key "a" appears twice`},
		{`{"list":[{"k":1,"k":2}]}`, `the key "k" appears twice`},
		{`{"by":"alice","surprise":true}`, `takes no field "surprise"`},
		{`{"count":"7"}`, "count must be a number"},
		{`{"by":`, "not closed"},
		{`{"by":"alice"`, "not closed"},
		{`{"by" "alice"}`, "invalid character"},
	}
	for _, tt := range tests {
		var v testBody
		err := decodeBytes([]byte(tt.body), &v)
		if (err == nil) != (tt.problem == "") || (err != nil && !strings.Contains(err.Error(), tt.problem)) {
			t.Errorf("decode(%q) = %v, want %q", tt.body, err, tt.problem)
		}
		if err != nil && !errors.Is(err, errBadBody) {
			t.Errorf("decode(%q) = %v, not a bad-body error", tt.body, err)
		}
	}
}

// TestEveryMutationTakesOnlyStrictBodies: every endpoint that takes a body answers 400 with a
// message to a malformed one and 413 to one over the limit, and none of them acts on it.
func TestEveryMutationTakesOnlyStrictBodies(t *testing.T) {
	f := newFixture(t, nil, withRepairs)
	f.letters.add(testLetters...)
	big := `{"reason":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	for _, e := range endpoints {
		if !e.mutating {
			continue
		}
		t.Run(e.method+" "+e.path, func(t *testing.T) {
			inner := strings.TrimSuffix(strings.TrimPrefix(e.body, "{"), "}")
			for body, want := range map[string]string{
				"":                             "empty",
				"null":                         "null",
				e.body + ` {"reason":"again"}`: "data after",
				e.body + "garbage":             "data after",
				`{` + inner + `,"by":"alice","by":"bob"}`: "appears twice",
				`{` + inner + `,"surprise":1}`:            "takes no field",
			} {
				r := f.do(t, nil, e.method, e.path, oncallToken, body)
				if r.status != http.StatusBadRequest || !strings.Contains(r.body, want) {
					t.Errorf("body %.60q: %d %s, want 400 %q", body, r.status, r.body, want)
				}
			}
			if r := f.do(t, nil, e.method, e.path, oncallToken, big); r.status != http.StatusRequestEntityTooLarge {
				t.Errorf("a body over the limit: %d %.200s", r.status, r.body)
			}
		})
	}
	if got, _ := f.svc.Audit(context.Background(), ops.AuditFilter{}); len(got) != 0 {
		t.Fatalf("refused bodies changed something: %+v", got)
	}
}

// TestLoginBodyOverTheLimit: a sign-in larger than its limit is a 413, as documented.
func TestLoginBodyOverTheLimit(t *testing.T) {
	f := newFixture(t, nil)
	for _, size := range []int{MaxLoginBodyBytes + 1, 10 << 20} {
		body := `{"token":"` + strings.Repeat("x", size) + `"}`
		if r := f.do(t, nil, "POST", "/api/login", "", body); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("sign-in of %d bytes: %d %.200s", size, r.status, r.body)
		}
	}
	for body, want := range map[string]int{
		`null`: 400, `{"token":"x","token":"y"}`: 400, `{"token":"x"} {}`: 400, `{"token":"x","extra":1}`: 400,
		`{"token":"` + aliceToken + `"}`: 200,
	} {
		if r := f.do(t, nil, "POST", "/api/login", "", body); r.status != want {
			t.Errorf("sign-in %q: %d %s, want %d", body, r.status, r.body, want)
		}
	}
}

// FuzzDecodeBody: any bytes are either refused with a bad-body error or decode to exactly one
// JSON object; decode never panics.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"by":"alice","reason":"r","detail":{"a":"b"},"list":["x"]}`, `null`, `{"by":1}`,
		`{"a":{"b":[{"c":{}}]}}`, `{"by":"a","BY":"b"}`, `{} {}`, `{"list":[[[]]]}`, "{\"by\":\"\\u0000\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v testBody
		err := decodeBytes(data, &v)
		if err != nil && !errors.Is(err, errBadBody) {
			t.Fatalf("decode(%q) = %v, not a bad-body error", data, err)
		}
		if err == nil && !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
			t.Fatalf("decode(%q) accepted something that is not an object", data)
		}
	})
}

// FuzzAPIBodies sends arbitrary bodies to every mutating endpoint of a real server over
// HTTP: no body gets a 500, and every refusal is a JSON error with a message.
func FuzzAPIBodies(f *testing.F) {
	for i, e := range endpoints {
		if e.mutating {
			f.Add(uint8(i), []byte(e.body))
		}
	}
	f.Add(uint8(4), []byte(`{"reason":"x","by":"a","by":"b"}`))
	fx := newFixture(f, nil, withRepairs)
	fx.letters.add(testLetters...)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e := endpoints[int(which)%len(endpoints)]
		if !e.mutating {
			return
		}
		r := fx.do(t, nil, e.method, e.path, oncallToken, string(body))
		if r.status == http.StatusInternalServerError {
			t.Fatalf("%s %s with %q: %d %s", e.method, e.path, body, r.status, r.body)
		}
		if r.status >= 400 && !strings.Contains(r.body, `"error":`) {
			t.Fatalf("%s %s with %q: %d without an error message: %s", e.method, e.path, body, r.status, r.body)
		}
	})
}
