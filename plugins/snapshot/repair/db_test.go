package repair

import (
	"strings"
	"testing"
	"time"
)

func TestDriverFor(t *testing.T) {
	for _, tc := range []struct {
		dsn, kind, contains, err string
	}{
		{dsn: "postgres://app:pw@127.0.0.1:5432/app", kind: "postgres", contains: "postgres://app:pw@"},
		{dsn: "host=127.0.0.1 user=app dbname=app", kind: "postgres", contains: "dbname=app"},
		{dsn: "mysql://root:pw@127.0.0.1:3307/app", kind: "mysql", contains: "root:pw@tcp(127.0.0.1:3307)/app?"},
		{dsn: "mariadb://root@db/app", kind: "mysql", contains: "tcp(db:3306)/app"},
		{dsn: "root:pw@tcp(127.0.0.1:3306)/app", kind: "mysql", contains: "parseTime=true"},
		{dsn: "", err: "no database address"},
		{dsn: "app_restored", err: "is not a database address"},
		{dsn: "mysql://[::1", err: "invalid MySQL address"},
	} {
		kind, got, err := driverFor(tc.dsn)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.dsn, err, tc.err)
			}
			continue
		}
		if err != nil || kind != tc.kind || !strings.Contains(got, tc.contains) {
			t.Errorf("%q: %s %q %v, want %s containing %q", tc.dsn, kind, got, err, tc.kind, tc.contains)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://app:secret@h/db":       "postgres://app:xxxxx@h/db",
		"host=h password=secret dbname=db": "host=h password=xxxxx dbname=db",
		"host=h password=secret":           "host=h password=xxxxx",
		"postgres://app@h/db":              "postgres://app@h/db",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValueAndTime(t *testing.T) {
	ts := time.Date(2026, 11, 29, 22, 57, 5, 123000000, time.UTC)
	for _, tc := range []struct {
		in   any
		want Value
	}{
		{nil, Value{Null: true}},
		{[]byte("$2b$12$abc"), Value{Text: "$2b$12$abc"}},
		{"x", Value{Text: "x"}},
		{int64(42), Value{Text: "42"}},
		{1.5, Value{Text: "1.5"}},
		{true, Value{Text: "true"}},
		{ts.In(time.FixedZone("CET", 3600)), Value{Text: "2026-11-29T22:57:05.123Z"}},
	} {
		if got := valueOf(tc.in); got != tc.want {
			t.Errorf("valueOf(%#v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, s := range []string{"2026-11-29T22:57:05.123Z", "2026-11-29 22:57:05.123", "2026-11-29 22:57:05.123+00"} {
		if got, ok := timeOf(s); !ok || !got.Equal(ts) {
			t.Errorf("timeOf(%q) = %v, %v", s, got, ok)
		}
		if got, ok := timeOf([]byte(s)); !ok || !got.Equal(ts) {
			t.Errorf("timeOf([]byte %q) = %v, %v", s, got, ok)
		}
	}
	if _, ok := timeOf("yesterday"); ok {
		t.Error("timeOf(yesterday) succeeded")
	}
}

func TestKeyLessOrdersNumbersNumerically(t *testing.T) {
	keys := []string{"10", "9", "b", "a", "100", "-1"}
	want := []string{"-1", "9", "10", "100", "a", "b"}
	for i := range keys {
		for j := range keys {
			a, b := keys[i], keys[j]
			if keyLess(a, b) && keyLess(b, a) {
				t.Fatalf("keyLess(%q, %q) both ways", a, b)
			}
		}
	}
	for i := 1; i < len(want); i++ {
		if !keyLess(want[i-1], want[i]) {
			t.Errorf("keyLess(%q, %q) = false", want[i-1], want[i])
		}
	}
}

func FuzzDriverFor(f *testing.F) {
	for _, s := range []string{"postgres://a:b@h/d", "host=h dbname=d", "mysql://r@h:1/d", "u:p@tcp(h:1)/d", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		kind, out, err := driverFor(dsn)
		if err == nil && (kind != "postgres" && kind != "mysql" || out == "") {
			t.Fatalf("%q: kind %q, dsn %q", dsn, kind, out)
		}
		if err != nil && strings.Contains(err.Error(), "password=") && !strings.Contains(err.Error(), "password=xxxxx") {
			t.Fatalf("%q: the error shows a password: %v", dsn, err)
		}
	})
}
