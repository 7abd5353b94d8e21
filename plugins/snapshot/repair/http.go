package repair

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTPWriter writes repaired rows through the application's own endpoint, for teams whose app
// must see every write: one request per row, with a JSON object of the row's restored values.
// There is no transaction across requests; a failed request stops the repair.
type HTTPWriter struct {
	// URLTemplate is the endpoint, with {key} (and optionally {table}) replaced by the row's,
	// e.g. http://127.0.0.1:8000/admin/users/{key}/restore.
	URLTemplate string
	// Method is the HTTP method (default POST).
	Method string
	// Fields renames columns in the JSON body, e.g. password_hash -> hashed_password, so that
	// the app stores the hash as it is instead of hashing it again; a column renamed to "-"
	// is left out. Columns not listed keep their names.
	Fields map[string]string
	// Header is sent with every request (e.g. Authorization).
	Header http.Header
	// Client sends the requests (nil: a client with a 30 s timeout).
	Client *http.Client
}

// Name implements RowWriter.
func (h *HTTPWriter) Name() string { return "http" }

// Check reports a template that cannot name rows.
func (h *HTTPWriter) Check() error {
	if !strings.Contains(h.URLTemplate, "{key}") {
		return fmt.Errorf("the URL template %q has no {key}: e.g. http://127.0.0.1:8000/admin/users/{key}/restore", h.URLTemplate)
	}
	u, err := url.Parse(strings.NewReplacer("{key}", "1", "{table}", "t").Replace(h.URLTemplate))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("the URL template %q is not an http(s) URL", h.URLTemplate)
	}
	return nil
}

// Write implements RowWriter.
func (h *HTTPWriter) Write(ctx context.Context, table, key string, values map[string]any) error {
	body := map[string]any{}
	for c, v := range values {
		name := c
		if n, ok := h.Fields[c]; ok {
			name = n
		}
		if name == "-" {
			continue
		}
		body[name] = jsonValue(v)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	target := strings.NewReplacer("{key}", url.PathEscape(key), "{table}", url.PathEscape(table)).Replace(h.URLTemplate)
	method := h.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(b))
	if err != nil {
		return err
	}
	for k, vs := range h.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s answered %s: %s", method, target, resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// jsonValue turns a value read by the driver into what the app gets: text as a string, times
// in RFC 3339, numbers and booleans as they are.
func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}
