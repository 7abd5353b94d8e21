package host

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestPluginEnv(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin", "HOME=/home/tda", "LC_ALL=C.UTF-8", "LANG=en_US.UTF-8", "TZ=UTC",
		"TDA_TOKEN_OPERATOR=secret-operator", "TDA_PG_PASSWORD=secret-pg", "PGPASSWORD=secret",
		"AWS_ACCESS_KEY_ID=AKIA", "AWS_SECRET_ACCESS_KEY=shh", "AWSX=no",
		"PLUGIN_CLIENT_CERT=forged", "TDA_PLUGIN_MAGIC_COOKIE=forged", "DOCKER_HOST=unix:///d.sock",
		"BROKEN",
	}
	cases := []struct {
		name         string
		inherit, set []string
		want         []string
	}{
		{"base only", nil, nil, []string{"DOCKER_HOST=unix:///d.sock", "HOME=/home/tda", "LANG=en_US.UTF-8",
			"LC_ALL=C.UTF-8", "PATH=/usr/bin", "TZ=UTC"}},
		{"a prefix and a name", []string{"AWS_*", "PGPASSWORD"}, nil, []string{
			"AWS_ACCESS_KEY_ID=AKIA", "AWS_SECRET_ACCESS_KEY=shh", "DOCKER_HOST=unix:///d.sock",
			"HOME=/home/tda", "LANG=en_US.UTF-8", "LC_ALL=C.UTF-8", "PATH=/usr/bin", "PGPASSWORD=secret", "TZ=UTC"}},
		{"set wins over inherited", []string{"AWS_*"}, []string{"AWS_ACCESS_KEY_ID=other", "GOMEMLIMIT=180MiB"}, []string{
			"AWS_ACCESS_KEY_ID=other", "AWS_SECRET_ACCESS_KEY=shh", "DOCKER_HOST=unix:///d.sock", "GOMEMLIMIT=180MiB",
			"HOME=/home/tda", "LANG=en_US.UTF-8", "LC_ALL=C.UTF-8", "PATH=/usr/bin", "TZ=UTC"}},
		{"the protocol's variables never pass", []string{"PLUGIN_*", "TDA_*"},
			[]string{"PLUGIN_MIN_PORT=1", "TDA_PLUGIN_MAGIC_COOKIE=x"}, []string{
				"DOCKER_HOST=unix:///d.sock", "HOME=/home/tda", "LANG=en_US.UTF-8", "LC_ALL=C.UTF-8", "PATH=/usr/bin",
				"TDA_PG_PASSWORD=secret-pg", "TDA_TOKEN_OPERATOR=secret-operator", "TZ=UTC"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := PluginEnv(environ, c.inherit, c.set)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("PluginEnv:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestValidEnvPattern(t *testing.T) {
	for p, ok := range map[string]bool{"AWS_*": true, "PGPASSWORD": true, "_X1": true, "*": false, "": false,
		"1AWS": false, "AWS-KEY": false, "A*B": false, "AWS_**": false, "ÄWS": false, "A=B": false} {
		if err := ValidEnvPattern(p); (err == nil) != ok {
			t.Errorf("ValidEnvPattern(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

// The environment does not depend on the order of the host's variables or of the patterns,
// except that set always wins.
func TestPluginEnvOrderDoesNotMatter(t *testing.T) {
	environ := []string{"PATH=/bin", "AWS_A=1", "AWS_B=2", "LC_TIME=C", "X=1", "TDA_TOKEN_A=t", "HOME=/h", "TZ=UTC"}
	inherit := []string{"AWS_*", "X", "LC_TIME"}
	set := []string{"X=from-config", "Y=2"}
	want := PluginEnv(environ, inherit, set)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		e := append([]string(nil), environ...)
		in := append([]string(nil), inherit...)
		rng.Shuffle(len(e), func(a, b int) { e[a], e[b] = e[b], e[a] })
		rng.Shuffle(len(in), func(a, b int) { in[a], in[b] = in[b], in[a] })
		if got := PluginEnv(e, in, set); !reflect.DeepEqual(got, want) {
			t.Fatalf("order %q %q: %q, want %q", e, in, got, want)
		}
	}
}
