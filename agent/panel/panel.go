// Package panel is tda's web control panel: one page (HTML, CSS and JavaScript embedded in
// the binary, no external asset) that the agent's HTTP server serves next to the API, and
// that Export writes as a static site for GitHub Pages, where it dispatches the repository's
// workflows instead of calling an agent.
package panel

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

//go:embed ui
var assets embed.FS

// contentSecurityPolicy allows the page's own files and nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var modTime = time.Now()

// Handler serves the panel's files. Unknown paths get the page itself.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "ui")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" || name == "." {
			name = "index.html"
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			name = "index.html"
			if b, err = fs.ReadFile(sub, name); err != nil {
				http.Error(w, "panel assets missing", http.StatusInternalServerError)
				return
			}
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, modTime, bytes.NewReader(b))
	})
}

// GitHubConfig is what the static page needs to act through GitHub.
type GitHubConfig struct {
	// API is the REST API's base URL (https://api.github.com, or a GitHub Enterprise one).
	API   string `json:"api"`
	Owner string `json:"owner"`
	Repo  string `json:"repo"`
	// Ref is the branch the workflows are dispatched on (production).
	Ref string `json:"ref"`
	// Workflows are the workflow files by action: snapshot, restore, migration, prune.
	Workflows map[string]string `json:"workflows"`
	// Data is where the workflows publish the JSON files, relative to the page.
	Data string `json:"data"`
}

// DefaultWorkflows are the files of examples/github/workflows.
var DefaultWorkflows = map[string]string{
	"snapshot":  "snapshot.yml",
	"restore":   "restore.yml",
	"migration": "approve-migration.yml",
	"prune":     "prune.yml",
}

// attrEscaper makes text safe inside a double-quoted HTML attribute.
var attrEscaper = strings.NewReplacer(`&`, "&amp;", `"`, "&quot;", `<`, "&lt;", `>`, "&gt;")

var apiHostRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// Check validates the configuration.
func (c *GitHubConfig) Check() error {
	u, err := url.Parse(c.API)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("-api %q is not an http(s) URL", c.API)
	}
	// The API's origin goes into the page's Content-Security-Policy: a host is letters,
	// digits, dots, hyphens and a port (or a bracketed IPv6 address), nothing that could end
	// the attribute or add a directive.
	if !apiHostRE.MatchString(u.Host) || u.User != nil {
		return fmt.Errorf("-api %q: the host %q is not a plain host name (letters, digits, dots, hyphens, an optional :port)", c.API, u.Host)
	}
	if c.Owner == "" || c.Repo == "" || strings.ContainsAny(c.Owner+c.Repo, "/ ") {
		return fmt.Errorf("-repo must be OWNER/NAME")
	}
	if c.Ref == "" {
		return fmt.Errorf("-ref must name the branch the workflows run on")
	}
	for _, k := range []string{"snapshot", "restore", "migration", "prune"} {
		if c.Workflows[k] == "" {
			return fmt.Errorf("no workflow file for %s", k)
		}
	}
	return nil
}

// Export writes the static GitHub-mode site into dir: the page, config.json and an empty
// data/ directory for the workflows to publish into.
func Export(dir string, c GitHubConfig) error {
	if c.Workflows == nil {
		c.Workflows = DefaultWorkflows
	}
	if c.Data == "" {
		c.Data = "data/"
	}
	c.API = strings.TrimRight(c.API, "/")
	if err := c.Check(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	u, _ := url.Parse(c.API)
	apiOrigin := u.Scheme + "://" + u.Host
	// Pages cannot send headers: the policy travels in the page, allowing the API too.
	csp := strings.Replace(contentSecurityPolicy, "connect-src 'self'", "connect-src 'self' "+apiOrigin, 1)
	csp = strings.Replace(csp, "; frame-ancestors 'none'", "", 1) // ignored in a meta element
	for _, name := range []string{"index.html", "app.js", "app.css", "recovery.js", "recovery.css"} {
		b, err := assets.ReadFile("ui/" + name)
		if err != nil {
			return err
		}
		if name == "index.html" {
			b = bytes.Replace(b, []byte("<!--CSP-->"),
				[]byte(`<meta http-equiv="Content-Security-Policy" content="`+attrEscaper.Replace(csp)+`">`+"\n"+`<meta name="referrer" content="no-referrer">`), 1)
			b = bytes.Replace(b, []byte(`<body data-mode="agent">`), []byte(`<body data-mode="github">`), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	cfg, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(cfg, '\n'), 0o644); err != nil {
		return err
	}
	// GitHub Pages runs Jekyll unless told not to.
	return os.WriteFile(filepath.Join(dir, ".nojekyll"), nil, 0o644)
}
