package eventtime

import (
	"testing"
	"time"
)

// validByComparison is Valid as the range is defined: MinTime <= t <= MaxTime.
func validByComparison(t time.Time) bool { return !t.Before(MinTime) && !t.After(MaxTime) }

func checkValid(t *testing.T, at time.Time) {
	t.Helper()
	if got, want := Valid(at), validByComparison(at); got != want {
		t.Fatalf("Valid(%v) = %v, want %v", at, got, want)
	}
}

func TestValidAtTheBounds(t *testing.T) {
	for _, at := range []time.Time{
		{}, MinTime, MinTime.Add(-1), MinTime.Add(1), MaxTime, MaxTime.Add(-1), MaxTime.Add(1),
		MaxTime.Add(time.Second), time.Unix(0, 999999999), time.Unix(-1, 5), time.Now(),
		time.Now().In(time.FixedZone("x", -7*3600)), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		checkValid(t, at)
	}
}

func FuzzValid(f *testing.F) {
	f.Add(int64(1), int64(0))
	f.Add(MaxTime.Unix(), int64(1))
	f.Fuzz(func(t *testing.T, sec, nsec int64) { checkValid(t, time.Unix(sec, nsec)) })
}

// BenchmarkValid checks a line's time against the range, as detection does several times
// per line: Valid, and the two comparisons it replaced.
func BenchmarkValid(b *testing.B) {
	at := time.Date(2026, 11, 29, 22, 57, 5, 123e6, time.UTC)
	for _, c := range []struct {
		name  string
		valid func(time.Time) bool
	}{{"unix-seconds", Valid}, {"comparisons", validByComparison}} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				if c.valid(at) {
					n++
				}
			}
			if n == 0 {
				b.Fatal("a valid time was refused")
			}
		})
	}
}
