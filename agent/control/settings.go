// Package control connects the operator's tools to tda's state: it reads the `http` block,
// builds the operations service from a configuration (audit trail, maintenance windows,
// snapshot targets), serves the API on the agent's unix socket and HTTP listener, and decides
// for every command whether to talk to the running agent or to open the state store itself.
package control

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/tda-dev/tda/agent/api"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/hclspec"
)

// DefaultListen is where the HTTP API listens unless the http block says otherwise.
const DefaultListen = "127.0.0.1:8470"

// MinTokenLength is the shortest token accepted.
const MinTokenLength = 16

// HTTPSettings is the decoded `http` block.
type HTTPSettings struct {
	Listen  string
	TLSCert string
	TLSKey  string
	// AuditTrail is the sink block (e.g. `sink "jsonl"`) whose audit trail the alerts are read
	// from (nil: found by itself).
	AuditTrail *config.Ref
	// ApprovalValidity is how long a migration approval lasts.
	ApprovalValidity time.Duration
	SessionTTL       time.Duration
	Tokens           []api.Token
	// MaxConnections and MaxConnectionsPerClient cap the listener's connections;
	// MaxWrongTokens is how many wrong tokens a client may send in a row (0: the defaults).
	MaxConnections          int
	MaxConnectionsPerClient int
	MaxWrongTokens          int
}

var httpSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "listen"}, {Name: "tls_cert"}, {Name: "tls_key"}, {Name: "audit_trail"},
		{Name: "approval_validity"}, {Name: "session_ttl"},
		{Name: "max_connections"}, {Name: "max_connections_per_client"}, {Name: "max_wrong_tokens"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: api.RoleOperator, LabelNames: []string{"name"}},
		{Type: api.RoleViewer, LabelNames: []string{"name"}},
	},
}

type tokenBlock struct {
	Token  string `hcl:"token"`
	Shared *bool  `hcl:"shared"`
}

// ParseHTTP decodes the config's http block; nil settings without one.
func ParseHTTP(cfg *config.Config) (*HTTPSettings, hcl.Diagnostics) {
	if cfg == nil || cfg.HTTP == nil {
		return nil, nil
	}
	s := &HTTPSettings{Listen: DefaultListen, ApprovalValidity: 24 * time.Hour, SessionTTL: 12 * time.Hour}
	content, diags := cfg.HTTP.Content(httpSchema)
	ctx := cfg.EvalContext()
	str := func(name string, dst *string) {
		if a, ok := content.Attributes[name]; ok {
			diags = append(diags, gohcl.DecodeExpression(a.Expr, ctx, dst)...)
		}
	}
	dur := func(name string, dst *time.Duration) {
		a, ok := content.Attributes[name]
		if !ok {
			return
		}
		var v string
		d := gohcl.DecodeExpression(a.Expr, ctx, &v)
		diags = append(diags, d...)
		if d.HasErrors() {
			return
		}
		x, err := sdk.ParseDuration(v)
		if err != nil || x <= 0 {
			diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid duration",
				"%s must be a positive duration such as \"24h\".", name))
			return
		}
		*dst = x
	}
	count := func(name string, dst *int, max int, hint string) {
		a, ok := content.Attributes[name]
		if !ok {
			return
		}
		var v int
		d := gohcl.DecodeExpression(a.Expr, ctx, &v)
		diags = append(diags, d...)
		if d.HasErrors() {
			return
		}
		if v < 1 || v > max {
			diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid "+name,
				"%s must be a whole number from 1 to %d; %s.", name, max, hint))
			return
		}
		*dst = v
	}
	count("max_connections", &s.MaxConnections, 65536, "the default is 512")
	count("max_connections_per_client", &s.MaxConnectionsPerClient, 65536,
		"the default is 64; behind a reverse proxy every client is the proxy, so set it to max_connections")
	count("max_wrong_tokens", &s.MaxWrongTokens, 10000, "the default is 10")
	if s.MaxConnections > 0 && s.MaxConnectionsPerClient > s.MaxConnections {
		a := content.Attributes["max_connections_per_client"]
		diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid max_connections_per_client",
			"max_connections_per_client (%d) is more than max_connections (%d): lower it, or raise max_connections.",
			s.MaxConnectionsPerClient, s.MaxConnections))
	}
	str("listen", &s.Listen)
	str("tls_cert", &s.TLSCert)
	str("tls_key", &s.TLSKey)
	dur("approval_validity", &s.ApprovalValidity)
	dur("session_ttl", &s.SessionTTL)
	if a, ok := content.Attributes["listen"]; ok && !diags.HasErrors() {
		host, _, err := net.SplitHostPort(s.Listen)
		if err != nil {
			diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid listen address",
				"listen must be HOST:PORT, e.g. %q: %v.", DefaultListen, err))
		} else if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && s.TLSCert == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Panel reachable from the network without TLS",
				Detail: fmt.Sprintf("listen = %q accepts connections from other hosts, and tokens would cross the network in clear text. "+
					"Set tls_cert and tls_key, or keep 127.0.0.1 and put a TLS proxy in front.", s.Listen),
				Subject: a.Expr.Range().Ptr()})
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		diags = append(diags, hclspec.ErrorfAt(*cfg.HTTPRange, "Incomplete TLS settings",
			"Set both tls_cert and tls_key, or neither."))
	}
	if a, ok := content.Attributes["audit_trail"]; ok {
		ref, d := parseSinkRef(a.Expr)
		diags = append(diags, d...)
		if ref != nil {
			c := cfg.Component(*ref)
			switch {
			case c == nil:
				diags = append(diags, hclspec.ErrorfAt(ref.Range, "Reference to undefined sink",
					"There is no sink block %s.", ref.Address()))
			case cfg.Registry != nil && trailField(cfg, c) == "":
				// The plugins are known: the sink's own spec says whether it writes a trail.
				diags = append(diags, hclspec.ErrorfAt(ref.Range, "Not an audit trail",
					"audit_trail must name a sink that writes an audit trail, such as a sink \"jsonl\" block; "+
						"%s is a %q sink, whose plugin declares no audit trail file.", ref.Address(), c.Type))
			default:
				s.AuditTrail = ref
			}
		}
	}
	names := map[string]bool{}
	for _, b := range content.Blocks {
		var tb tokenBlock
		d := gohcl.DecodeBody(b.Body, ctx, &tb)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		name := b.Labels[0]
		if names[name] {
			diags = append(diags, hclspec.ErrorfAt(b.DefRange, "Duplicate token name",
				"Another operator or viewer is already named %q; names identify people in the audit log.", name))
			continue
		}
		names[name] = true
		tok := strings.TrimSpace(tb.Token)
		if len(tok) < MinTokenLength {
			what := "is empty"
			if tok != "" {
				what = fmt.Sprintf("has %d characters", len(tok))
			}
			diags = append(diags, hclspec.ErrorfAt(b.DefRange, "Weak or missing token",
				"The token of %s %q %s; at least %d are required (is its environment variable or file set?). "+
					"Generate one with: openssl rand -hex 32", b.Type, name, what, MinTokenLength))
			continue
		}
		for _, other := range s.Tokens {
			if other.Secret == tok {
				diags = append(diags, hclspec.ErrorfAt(b.DefRange, "Token used twice",
					"%s %q has the same token as %q; give each holder their own.", b.Type, name, other.Name))
			}
		}
		s.Tokens = append(s.Tokens, api.Token{Name: name, Role: b.Type, Secret: tok, Shared: tb.Shared != nil && *tb.Shared})
	}
	if len(s.Tokens) == 0 && !diags.HasErrors() {
		diags = append(diags, hclspec.ErrorfAt(*cfg.HTTPRange, "No token",
			"The http block needs at least one operator or viewer block with a token: nothing is served without one."))
	}
	return s, diags
}

func parseSinkRef(expr hcl.Expression) (*config.Ref, hcl.Diagnostics) {
	trav, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() || len(trav) != 3 || trav.RootName() != "sink" {
		return nil, hcl.Diagnostics{hclspec.ErrorfAt(expr.Range(), "Invalid reference",
			"Expected a sink reference such as sink.jsonl.audit.")}
	}
	typ, ok1 := trav[1].(hcl.TraverseAttr)
	name, ok2 := trav[2].(hcl.TraverseAttr)
	if !ok1 || !ok2 {
		return nil, hcl.Diagnostics{hclspec.ErrorfAt(expr.Range(), "Invalid reference",
			"Expected a sink reference such as sink.jsonl.audit.")}
	}
	return &config.Ref{Kind: sdk.KindSink, Type: typ.Name, Name: name.Name, Range: expr.Range()}, nil
}
