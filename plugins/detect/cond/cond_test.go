package cond

import "testing"

func TestEval(t *testing.T) {
	fields := map[string]string{"actor_role": "admin", "ip": "10.0.0.5", "status": "401", "path": "/admin/users"}
	get := func(n string) string { return fields[n] }
	tests := []struct {
		src  string
		want bool
	}{
		{`actor_role == admin`, true},
		{`actor_role == "admin"`, true},
		{`actor_role != admin`, false},
		{`actor_role == user || ip == 10.0.0.5`, true},
		{`actor_role == user or ip == "10.0.0.6"`, false},
		{`actor_role == admin && status in [401, 403]`, true},
		{`actor_role == admin and not (status in [401, 403])`, false},
		{`!actor`, true},
		{`actor`, false},
		{`path =~ "^/admin/"`, true},
		{`path !~ "^/admin/"`, false},
		{`(a == 1 || b == 2) && actor_role == admin`, false},
		{`username == ""`, true},
	}
	for _, tt := range tests {
		x, err := Parse(tt.src)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		if got := x.Eval(get); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.src, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{``, `a ==`, `a == b)`, `(a == b`, `a in b`, `a in [b`, `a =~ "("`, `"a" == b`, `a == "unterminated`, `a $ b`, `a == b c`} {
		if _, err := Parse(src); err == nil {
			t.Errorf("Parse(%q) succeeded", src)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`actor_role == admin`, `!(a in [1, "2"]) && b =~ "x.*" || c`, `((((`, `a == "\"q\""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		x, err := Parse(src)
		if err != nil {
			return
		}
		x.Eval(func(string) string { return "v" })
		_ = x.Fields()
	})
}
