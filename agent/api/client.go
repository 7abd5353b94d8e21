package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
)

// Client calls a running agent's API: over its unix socket, or over HTTP with a token. It
// implements ops.Operations, and errors come back as *ops.Error with the agent's message.
type Client struct {
	base  string
	token string
	http  *http.Client
}

var _ ops.Operations = (*Client)(nil)

// NewSocketClient returns a client of the agent listening on the unix socket at path.
func NewSocketClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{base: "http://tda", http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// NewHTTPClient returns a client of the agent's HTTP API at base (e.g.
// "http://127.0.0.1:8470") authenticating with token.
func NewHTTPClient(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 2 * time.Minute}}
}

// Ping checks that the agent answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("the agent did not answer: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the agent's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e errorBody
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return fmt.Errorf("the agent answered %s", resp.Status)
		}
		kind := e.Kind
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return &ops.Error{Kind: ops.KindForbidden, Message: e.Error + " (set TDA_TOKEN or -token)"}
		case http.StatusBadRequest:
			kind = ops.KindInvalid
		case http.StatusForbidden:
			kind = ops.KindForbidden
		case http.StatusNotFound:
			kind = ops.KindNotFound
		case http.StatusConflict:
			kind = ops.KindConflict
		case http.StatusServiceUnavailable:
			kind = ops.KindUnavailable
		default:
			kind = ""
		}
		if kind == "" {
			return fmt.Errorf("%s", e.Error)
		}
		return &ops.Error{Kind: kind, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("the agent's answer is not what this tda expects (%v): are both the same version?", err)
		}
	}
	return nil
}

func query(pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			v.Set(pairs[i], pairs[i+1])
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

func timeParam(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func limitParam(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// State implements ops.Operations.
func (c *Client) State(ctx context.Context) (ops.SystemState, error) {
	var st ops.SystemState
	return st, c.do(ctx, http.MethodGet, "/api/state", nil, &st)
}

// Alerts implements ops.Operations.
func (c *Client) Alerts(ctx context.Context, f ops.AlertFilter) ([]ops.Incident, error) {
	var out []ops.Incident
	return out, c.do(ctx, http.MethodGet, "/api/alerts"+query("state", f.State, "severity", f.Severity, "rule", f.Rule,
		"since", timeParam(f.Since), "acknowledged", f.Acknowledged, "limit", limitParam(f.Limit)), nil, &out)
}

// Acknowledge implements ops.Operations.
func (c *Client) Acknowledge(ctx context.Context, by ops.Actor, req ops.AckRequest) (ops.Ack, error) {
	var a ops.Ack
	return a, c.do(ctx, http.MethodPost, "/api/alerts/"+url.PathEscape(req.Fingerprint)+"/ack",
		ackBody{By: by.Name, Comment: req.Comment}, &a)
}

// RecordAction implements ops.Operations.
func (c *Client) RecordAction(ctx context.Context, by ops.Actor, rec ops.ActionRecord) (ops.AuditEntry, error) {
	var e ops.AuditEntry
	return e, c.do(ctx, http.MethodPost, "/api/audit", recordBody{By: by.Name, ActionRecord: rec}, &e)
}

// Override implements ops.Operations.
func (c *Client) Override(ctx context.Context) (ops.OverrideStatus, error) {
	var st ops.OverrideStatus
	return st, c.do(ctx, http.MethodGet, "/api/override", nil, &st)
}

// OverrideOn implements ops.Operations.
func (c *Client) OverrideOn(ctx context.Context, by ops.Actor, req ops.OverrideRequest) (ops.OverrideStatus, error) {
	var st ops.OverrideStatus
	return st, c.do(ctx, http.MethodPost, "/api/override/on", overrideBody{By: by.Name, Reason: req.Reason, TTL: req.TTL}, &st)
}

// OverrideOff implements ops.Operations.
func (c *Client) OverrideOff(ctx context.Context, by ops.Actor, req ops.OverrideRequest) (ops.OverrideStatus, error) {
	var st ops.OverrideStatus
	return st, c.do(ctx, http.MethodPost, "/api/override/off", overrideBody{By: by.Name, Reason: req.Reason}, &st)
}

// Migrations implements ops.Operations.
func (c *Client) Migrations(ctx context.Context, f ops.MigrationFilter) ([]ops.Migration, error) {
	var out []ops.Migration
	return out, c.do(ctx, http.MethodGet, "/api/migrations"+query("status", f.Status, "name", f.Name,
		"limit", limitParam(f.Limit)), nil, &out)
}

// RequestMigration implements ops.Operations.
func (c *Client) RequestMigration(ctx context.Context, by ops.Actor, req ops.MigrationRequest) (ops.Migration, error) {
	var m ops.Migration
	return m, c.do(ctx, http.MethodPost, "/api/migrations", migrationBody{By: by.Name, Name: req.Name, Reason: req.Reason}, &m)
}

// DecideMigration implements ops.Operations.
func (c *Client) DecideMigration(ctx context.Context, by ops.Actor, d ops.Decision) (ops.Migration, error) {
	verb := "reject"
	if d.Approve {
		verb = "approve"
	}
	var m ops.Migration
	return m, c.do(ctx, http.MethodPost, "/api/migrations/"+url.PathEscape(d.ID)+"/"+verb,
		decisionBody{By: by.Name, Reason: d.Reason, ValidFor: d.ValidFor}, &m)
}

// BeginMigration implements ops.Operations.
func (c *Client) BeginMigration(ctx context.Context, by ops.Actor, req ops.BeginMigration) (ops.Migration, error) {
	var m ops.Migration
	return m, c.do(ctx, http.MethodPost, "/api/migrations/begin", beginBody{By: by.Name, BeginMigration: req}, &m)
}

// FinishMigration implements ops.Operations.
func (c *Client) FinishMigration(ctx context.Context, by ops.Actor, req ops.FinishMigration) (ops.Migration, error) {
	var m ops.Migration
	return m, c.do(ctx, http.MethodPost, "/api/migrations/"+url.PathEscape(req.ID)+"/finish",
		finishBody{By: by.Name, Snapshot: req.Snapshot, Outcome: req.Outcome, ExitCode: req.ExitCode, Error: req.Error}, &m)
}

// Snapshots implements ops.Operations.
func (c *Client) Snapshots(ctx context.Context) ([]ops.SnapshotTarget, error) {
	var out []ops.SnapshotTarget
	return out, c.do(ctx, http.MethodGet, "/api/snapshots", nil, &out)
}

// CreateSnapshot implements ops.Operations.
func (c *Client) CreateSnapshot(ctx context.Context, by ops.Actor, req ops.SnapshotRequest) (ops.SnapshotInfo, error) {
	var info ops.SnapshotInfo
	return info, c.do(ctx, http.MethodPost, "/api/snapshots", snapshotBody{By: by.Name, SnapshotRequest: req}, &info)
}

// Restores implements ops.Operations.
func (c *Client) Restores(ctx context.Context) ([]ops.Restore, error) {
	var out []ops.Restore
	return out, c.do(ctx, http.MethodGet, "/api/restores", nil, &out)
}

// StartRestore implements ops.Operations.
func (c *Client) StartRestore(ctx context.Context, by ops.Actor, req ops.RestoreRequest) (ops.Restore, error) {
	var r ops.Restore
	return r, c.do(ctx, http.MethodPost, "/api/restores", restoreBody{By: by.Name, RestoreRequest: req}, &r)
}

// Audit implements ops.Operations.
func (c *Client) Audit(ctx context.Context, f ops.AuditFilter) ([]ops.AuditEntry, error) {
	var out []ops.AuditEntry
	return out, c.do(ctx, http.MethodGet, "/api/audit"+query("actor", f.Actor, "action", f.Action, "target", f.Target,
		"since", timeParam(f.Since), "limit", limitParam(f.Limit)), nil, &out)
}

// DeadLetters implements ops.Operations.
func (c *Client) DeadLetters(ctx context.Context) ([]deadletter.Letter, error) {
	var out []deadletter.Letter
	return out, c.do(ctx, http.MethodGet, "/api/deadletters", nil, &out)
}

// DeadLetter implements ops.Operations.
func (c *Client) DeadLetter(ctx context.Context, id uint64) (ops.DeadLetterDetail, error) {
	var d ops.DeadLetterDetail
	return d, c.do(ctx, http.MethodGet, "/api/deadletters/"+strconv.FormatUint(id, 10), nil, &d)
}

// ReplayDeadLetter implements ops.Operations.
func (c *Client) ReplayDeadLetter(ctx context.Context, by ops.Actor, req ops.DeadLetterAction) (deadletter.Letter, error) {
	var l deadletter.Letter
	return l, c.do(ctx, http.MethodPost, "/api/deadletters/"+strconv.FormatUint(req.ID, 10)+"/replay",
		deadLetterBody{By: by.Name, Reason: req.Reason}, &l)
}

// DropDeadLetter implements ops.Operations.
func (c *Client) DropDeadLetter(ctx context.Context, by ops.Actor, req ops.DeadLetterAction) (deadletter.Letter, error) {
	var l deadletter.Letter
	return l, c.do(ctx, http.MethodDelete, "/api/deadletters/"+strconv.FormatUint(req.ID, 10),
		deadLetterBody{By: by.Name, Reason: req.Reason}, &l)
}
