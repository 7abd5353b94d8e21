package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/tda-dev/tda/sdk/host"
)

// decodePluginEnv checks a plugin block's env and inherit_env and stores them in p. A
// plugin process gets the agent's base variables only (host.BaseEnvNames); these two are
// how an operator gives it more: values written in the config (secrets through env("...")
// or file("..."), resolved by the agent), or variables of the agent's environment by name.
func decodePluginEnv(body hcl.Body, p *Plugin, env *map[string]string, inherit *[]string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if env != nil {
		names := make([]string, 0, len(*env))
		for n := range *env {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			msg := envNameProblem(n)
			if msg == "" && strings.ContainsRune((*env)[n], 0) {
				msg = fmt.Sprintf("The value of %s holds a NUL character, which no environment variable can.", n)
			}
			if msg != "" {
				diags = append(diags, envError(body, "env", n, "Invalid variable in env",
					msg+` Set variables such as env = { AWS_REGION = "eu-west-1", AWS_SECRET_ACCESS_KEY = env("TDA_AWS_SECRET") }.`))
				continue
			}
			p.Env = append(p.Env, n+"="+(*env)[n])
		}
	}
	if inherit != nil {
		for i, pat := range *inherit {
			msg := ""
			if err := host.ValidEnvPattern(pat); err != nil {
				msg = err.Error() + "."
			} else if host.ReservedEnv(strings.TrimSuffix(pat, "*")) {
				msg = fmt.Sprintf("%s names variables of the plugin protocol, which the agent sets for every launch.", pat)
			}
			if msg != "" {
				r := listElemRange(body, "inherit_env", i)
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable in inherit_env",
					Detail: msg + ` Write names such as "AWS_REGION", or prefixes such as "AWS_*".`, Subject: r})
				continue
			}
			p.InheritEnv = append(p.InheritEnv, pat)
		}
	}
	return diags
}

// envNameProblem says what is wrong with a variable name of env, or "".
func envNameProblem(name string) string {
	if err := host.ValidEnvName(name); err != nil {
		return err.Error() + "."
	}
	if host.ReservedEnv(name) {
		return fmt.Sprintf("%s belongs to the plugin protocol; the agent sets it for every launch.", name)
	}
	return ""
}

// envError is an error at the item of an object attribute whose key is key (the whole
// attribute when the value is not written as an object).
func envError(body hcl.Body, attr, key, summary, detail string) *hcl.Diagnostic {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: attrRange(body, attr)}
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return d
	}
	a, ok := sb.Attributes[attr]
	if !ok {
		return d
	}
	if obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range obj.Items {
			if k, diags := item.KeyExpr.Value(nil); !diags.HasErrors() && k.Type().FriendlyName() == "string" && k.AsString() == key {
				r := item.KeyExpr.Range()
				d.Subject = &r
			}
		}
	}
	return d
}

// listElemRange is the range of the i-th element of a list attribute, or of the attribute.
func listElemRange(body hcl.Body, attr string, i int) *hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	a, ok := sb.Attributes[attr]
	if !ok {
		return nil
	}
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && i < len(tup.Exprs) {
		r := tup.Exprs[i].Range()
		return &r
	}
	r := a.Expr.Range()
	return &r
}
