package detect_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

const oneRule = "rule \"r\" {\n  match = \"login_failed\"\n  threshold = 1\n}\n"

// TestAccessConfigErrors: bad gunicorn formats, proxies and routes are diagnostics at the
// element at fault, with a hint.
func TestAccessConfigErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"gunicorn_formats = [\n  \"%(h)s %(s)s \\\"%(r)s\\\"\",\n  \"%(h)s %(zz)s %(s)s %(r)s\"\n]\n" + oneRule,
			`3:3: Invalid gunicorn format: Format 2, at character 7: %(zz)s is not a gunicorn atom. The atoms are h l u t`},
		{"gunicorn_formats = [\"%(h)s %(t)s\"]\n" + oneRule, `1:21: Invalid gunicorn format: Format 1, at character 1: the format has no %(s)s. Detection needs`},
		{"gunicorn_formats = [\"%(h) - %(s)s %(r)s\"]\n" + oneRule, `1:21: Invalid gunicorn format: Format 1, at character 1: %(h) is followed by '%', not a conversion. End every atom with s: %(h)s`},
		{"trusted_proxies = [\"10.0.0.0/33\"]\n" + oneRule, `1:19: Invalid trusted_proxies: "10.0.0.0/33" is not a CIDR`},
		{"route {\n  path = \"login\"\n  event = \"login_failed\"\n}\n" + oneRule, `2:10: Invalid path: path "login" must start with /`},
		{"route {\n  path = \"/x\"\n  event = \"login_failed\"\n}\nroute {\n  path = \"/users/:id\"\n  event = \"user_deleted\"\n  fields = { user_id = \":uid\" }\n}\n" + oneRule,
			`8:12: Invalid fields: user_id = ":uid" names no capture of the path "/users/:id"`},
		{"route {\n  path = \"/x\"\n  status = [200, 999]\n  event = \"e\"\n}\n" + oneRule, `3:12: Invalid status: status 999 is not an HTTP status`},
		{"route {\n  method = \"P OST\"\n  path = \"/x\"\n  event = \"e\"\n}\n" + oneRule, `2:12: Invalid method: "P OST" is not an HTTP method`},
		{"route {\n  path = \"/x\"\n}\n" + oneRule, `The argument "event" is required`},
	}
	for _, tt := range tests {
		for _, comp := range []sdk.Component{detect.RulesComponent(), detect.OverrideComponent()} {
			src := tt.src
			if comp.Name == "override" {
				src = src[:strings.Index(src, "rule \"r\"")]
			}
			diags := strings.Join(sdktest.Validate(t, comp, src), "\n")
			if !strings.Contains(diags, "test.hcl:"+tt.want) && !strings.Contains(diags, tt.want) {
				t.Errorf("%s config:\n%s\ndiagnostics:\n%s\ndo not contain %q", comp.Name, src, diags, tt.want)
			}
		}
	}
}

// TestBehindProxy: failures of many users behind one proxy do not land on the proxy's key once
// the proxy is trusted; the route declares the form login's failure.
func TestBehindProxy(t *testing.T) {
	rule := `
rule "auth_failures" {
  match     = "login_failed"
  threshold = 3
  window    = "60s"
  group_by  = "ip"
}`
	var lines [][]byte
	for i := 0; i < 8; i++ {
		// Eight users behind the load balancer 10.0.0.2 fail once each; 203.0.113.66 four times.
		ip := fmt.Sprintf("198.51.100.%d", 10+i)
		if i >= 4 {
			ip = "203.0.113.66"
		}
		lines = append(lines, []byte(fmt.Sprintf(`%s, 10.0.0.2 - - [05/Dec/2026:15:46:%02d +0000] "POST /login HTTP/1.1" 200 1043 "-" "Mozilla/5.0"`, ip, 10+i)))
	}
	route := "route {\n  method = \"POST\"\n  path   = \"/login\"\n  status = [200]\n  event  = \"login_failed\"\n}\n"
	for _, tc := range []struct {
		name, src, want string
	}{
		{"without route nothing is recognised", rule, ""},
		{"untrusted proxy: all on its key", route + rule, "10.0.0.2"},
		{"trusted proxy: the client", route + "trusted_proxies = [\"10.0.0.0/8\"]\n" + rule, "203.0.113.66"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sdktest.NewProcessor(t, detect.RulesComponent(), tc.src)
			out := alertsOf(p.ProcessAt(logEvents(lines, "gunicorn.log"), sdk.Watermark{}))
			var keys []string
			for _, a := range out {
				keys = append(keys, a.Alert.Key)
			}
			if strings.Join(keys, ",") != tc.want {
				t.Fatalf("alert keys %q, want %q", keys, tc.want)
			}
			if len(out) == 1 && !out[0].Time.Before(time.Date(2026, 12, 5, 15, 47, 0, 0, time.UTC)) {
				t.Fatalf("alert time %s", out[0].Time)
			}
		})
	}
}
