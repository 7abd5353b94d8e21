package pluginhost

import (
	"errors"
	"strings"
	"testing"
)

func TestNegotiateProtocol(t *testing.T) {
	for _, c := range []struct {
		served, spoken []int
		want           int
		ok             bool
	}{
		{[]int{1}, []int{1}, 1, true},
		{[]int{1, 2}, []int{1}, 1, true},
		{[]int{1, 2}, []int{1, 2}, 2, true},
		{[]int{2, 1}, []int{2, 1, 3}, 2, true},
		{[]int{1, 2, 3}, []int{2, 3, 4}, 3, true},
		{[]int{3, 4}, []int{1, 2}, 0, false},
		{[]int{1}, []int{2, 3}, 0, false},
		{nil, []int{1}, 0, false},
		{[]int{0, -1}, []int{0, -1}, 0, false},
	} {
		got, ok := NegotiateProtocol(c.served, c.spoken)
		if got != c.want || ok != c.ok {
			t.Errorf("NegotiateProtocol(%v, %v) = %d %v, want %d %v", c.served, c.spoken, got, ok, c.want, c.ok)
		}
	}
}

func TestProtocolErrorSaysWhatToDo(t *testing.T) {
	for _, c := range []struct {
		err  ProtocolError
		want string
	}{
		{ProtocolError{Path: "/p/tda-plugin-x", Plugin: "x", Served: []int{3, 4}, Spoken: []int{1, 2}},
			"plugin x serves protocol 3, 4; this tda speaks 1, 2: upgrade tda or use a plugin built for protocol 1-2"},
		{ProtocolError{Path: "/p/tda-plugin-x", Plugin: "x", Served: []int{3}, Spoken: []int{1}},
			"plugin x serves protocol 3; this tda speaks 1: upgrade tda or use a plugin built for protocol 1"},
		{ProtocolError{Path: "/p/tda-plugin-x", Plugin: "x", Served: []int{1}, Spoken: []int{2, 3}},
			"plugin x serves protocol 1; this tda speaks 2, 3: rebuild the plugin against a current sdk, or use one built for protocol 2-3"},
		{ProtocolError{Path: "/p/tda-plugin-y", Served: []int{2}, Spoken: []int{1, 3}},
			"plugin tda-plugin-y serves protocol 2; this tda speaks 1, 3: upgrade tda or use a plugin built for protocol 1, 3"},
		{ProtocolError{Path: "/p/tda-plugin-z", Plugin: "z", Spoken: []int{1}},
			"plugin z serves no protocol version; this tda speaks 1: upgrade tda or use a plugin built for protocol 1"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestParseDescription(t *testing.T) {
	for _, c := range []struct {
		name, out string
		spoken    []int
		want      int
		err       string // "" for none
	}{
		{"before negotiation", `{"name":"old","protocol":1,"components":[]}`, []int{1}, 1, ""},
		{"a list", `{"name":"new","protocol":1,"protocols":[1,2],"components":[]}`, []int{1}, 1, ""},
		{"the highest common", `{"name":"new","protocol":1,"protocols":[1,2,3],"components":[]}`, []int{1, 2}, 2, ""},
		{"the list wins over the integer", `{"name":"n","protocol":1,"protocols":[2],"components":[]}`, []int{1, 2}, 2, ""},
		{"only newer", `{"name":"newer","protocol":3,"protocols":[3,4],"components":[]}`, []int{1, 2}, 0,
			"plugin newer serves protocol 3, 4; this tda speaks 1, 2: upgrade tda or use a plugin built for protocol 1-2"},
		{"old integer, newer host", `{"name":"old","protocol":1}`, []int{2}, 0,
			"plugin old serves protocol 1; this tda speaks 2: rebuild the plugin against a current sdk"},
		{"no version", `{"name":"none"}`, []int{1}, 0, "plugin none serves no protocol version"},
		{"malformed", `{"name":`, []int{1}, 0, "malformed output"},
		{"wrong type", `{"name":"x","protocols":"1,2"}`, []int{1}, 0, "malformed output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, v, err := ParseDescription("/p/tda-plugin-x", []byte(c.out), c.spoken)
			if c.err == "" {
				if err != nil || v != c.want || d == nil {
					t.Fatalf("got %d %v", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want %q", err, c.err)
			}
			var pe *ProtocolError
			if errors.As(err, &pe) && d == nil {
				t.Fatal("a protocol mismatch loses the description")
			}
		})
	}
}

// FuzzParseDescription: whatever a plugin prints, the host either refuses it with an error
// or picks a version both sides have.
func FuzzParseDescription(f *testing.F) {
	for _, s := range []string{`{"protocol":1}`, `{"protocol":1,"protocols":[1,2]}`, `{"protocols":[3,4]}`,
		`{"protocols":[-1,0,2,2]}`, `[]`, `{"protocol":"1"}`, ``} {
		f.Add(s)
	}
	spoken := []int{1, 2}
	f.Fuzz(func(t *testing.T, out string) {
		d, v, err := ParseDescription("p", []byte(out), spoken)
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) && (d == nil || pe.Error() == "") {
				t.Fatalf("protocol error without a description: %v", err)
			}
			return
		}
		if v != 1 && v != 2 {
			t.Fatalf("picked %d, which this host does not speak", v)
		}
		found := false
		for _, s := range d.Served() {
			found = found || s == v
		}
		if !found {
			t.Fatalf("picked %d, which the plugin does not serve (%v)", v, d.Served())
		}
	})
}
