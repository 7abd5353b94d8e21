package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/ops"
)

// TestSharedTokenLookAlikeCannotSelfApprove: with a shared token, "alice\u200b" is alice, who
// cannot approve her own request; the API answers 403 and shows the normalised name.
func TestSharedTokenLookAlikeCannotSelfApprove(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, nil, "POST", "/api/migrations", oncallToken, `{"name":"V7","by":"Alice"}`)
	var m ops.Migration
	r.decode(t, &m)
	if r.status != http.StatusCreated || m.RequestedBy != "alice" {
		t.Fatalf("request: %d %s", r.status, r.body)
	}
	for _, by := range []string{`alice\u200b`, `ALICE`, `\uff41lice`, `\u202ealice`} {
		r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/approve", oncallToken, `{"reason":"ok","by":"`+by+`"}`)
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "alice requested") {
			t.Errorf("approval by %s: %d %s", by, r.status, r.body)
		}
	}
	if r := f.do(t, nil, "POST", "/api/alerts/fp-high/ack", aliceToken, `{"comment":"on it"}`); r.status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	// A personal token cannot name someone who only looks like its holder, and may name itself
	// in any form.
	if r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/approve", bobToken, `{"reason":"ok","by":"b\u200bob2"}`); r.status != http.StatusForbidden {
		t.Errorf("bob acting as another: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/approve", bobToken, `{"reason":"reviewed","by":"BOB\u200b"}`); r.status != http.StatusOK {
		t.Errorf("bob naming himself: %d %s", r.status, r.body)
	}
}

// TestAPIRefusesControlCharacters: a reason, comment or name with a line break or terminal
// codes is a 400 that says why, on every endpoint that takes one.
func TestAPIRefusesControlCharacters(t *testing.T) {
	f := newFixture(t, nil)
	f.letters.add(testLetters...)
	forged := `ok\nbob      approved  8`
	for _, c := range []struct{ path, body string }{
		{"/api/alerts/fp-med/ack", `{"comment":"` + forged + `","by":"carol"}`},
		{"/api/override/on", `{"reason":"\u001b]0;pwned\u0007","ttl":"5m","by":"carol"}`},
		{"/api/migrations", `{"name":"V1","reason":"` + forged + `","by":"carol"}`},
		{"/api/migrations", `{"name":"V1","by":"carol\nbob"}`},
		{"/api/snapshots", `{"reason":"` + forged + `","by":"carol"}`},
		{"/api/restores", `{"snapshot":"x","new_name":"y","confirm":"app","reason":"` + forged + `","by":"carol"}`},
		{"/api/audit", `{"action":"restore.run","reason":"` + forged + `","by":"carol"}`},
		{"/api/deadletters/3/replay", `{"reason":"` + forged + `","by":"carol"}`},
	} {
		r := f.do(t, nil, "POST", c.path, oncallToken, c.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "control character") {
			t.Errorf("%s %s: %d %s", c.path, c.body, r.status, r.body)
		}
	}
}
