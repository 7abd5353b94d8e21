package api

import (
	"bytes"
	"context"
	"net/http"
	"net/url"

	"github.com/tda-dev/tda/agent/ops"
)

// incidentBody is the body of an acknowledgement (Reason) or a closing (Note): who (shared
// tokens and the socket) and why.
type incidentBody struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
}

func (s *Server) incidents(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	f := ops.IncidentFilter{Status: q.Get("status"), Severity: q.Get("severity"), Rule: q.Get("rule"), Query: q.Get("q")}
	var err error
	if f.Since, err = parseTime(q.Get("since"), "since"); err != nil {
		return err
	}
	if f.Limit, err = parseLimit(q.Get("limit")); err != nil {
		return err
	}
	list, err := s.opts.Ops.Incidents(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) incident(w http.ResponseWriter, r *http.Request, _ principal) error {
	d, err := s.opts.Ops.Incident(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// incidentEntities serves an incident's entities as CSV (entities.csv) or JSON
// (entities.json), as a download named after the incident.
func (s *Server) incidentEntities(csv bool) handler {
	return func(w http.ResponseWriter, r *http.Request, _ principal) error {
		d, err := s.opts.Ops.Incident(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		name := "incident-" + d.ID + "-entities"
		if !csv {
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
			writeJSON(w, http.StatusOK, d.Entities)
			return nil
		}
		var buf bytes.Buffer
		if err := d.Entities.WriteCSV(&buf); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, err = w.Write(buf.Bytes())
		return err
	}
}

// actOnIncident handles an acknowledgement (ack true) or a closing.
func (s *Server) actOnIncident(ack bool) handler {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		var b incidentBody
		if err := decode(r, &b); err != nil {
			return err
		}
		by, err := actor(p, b.By)
		if err != nil {
			return err
		}
		req := ops.IncidentAction{ID: r.PathValue("id"), Reason: b.Reason, Note: b.Note}
		var in ops.Incident
		if ack {
			in, err = s.opts.Ops.AcknowledgeIncident(r.Context(), by, req)
		} else {
			in, err = s.opts.Ops.CloseIncident(r.Context(), by, req)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, in)
		return nil
	}
}

// Incidents implements ops.Operations.
func (c *Client) Incidents(ctx context.Context, f ops.IncidentFilter) ([]ops.Incident, error) {
	var out []ops.Incident
	return out, c.do(ctx, http.MethodGet, "/api/incidents"+query("status", f.Status, "severity", f.Severity,
		"rule", f.Rule, "q", f.Query, "since", timeParam(f.Since), "limit", limitParam(f.Limit)), nil, &out)
}

// Incident implements ops.Operations.
func (c *Client) Incident(ctx context.Context, id string) (ops.IncidentDetail, error) {
	var d ops.IncidentDetail
	return d, c.do(ctx, http.MethodGet, "/api/incidents/"+incidentPath(id), nil, &d)
}

// AcknowledgeIncident implements ops.Operations.
func (c *Client) AcknowledgeIncident(ctx context.Context, by ops.Actor, req ops.IncidentAction) (ops.Incident, error) {
	var in ops.Incident
	return in, c.do(ctx, http.MethodPost, "/api/incidents/"+incidentPath(req.ID)+"/ack",
		incidentBody{By: by.Name, Reason: req.Reason}, &in)
}

// CloseIncident implements ops.Operations.
func (c *Client) CloseIncident(ctx context.Context, by ops.Actor, req ops.IncidentAction) (ops.Incident, error) {
	var in ops.Incident
	return in, c.do(ctx, http.MethodPost, "/api/incidents/"+incidentPath(req.ID)+"/close",
		incidentBody{By: by.Name, Note: req.Note}, &in)
}

// incidentPath escapes an id for the path; an empty one still reaches the handler, which
// says what is missing.
func incidentPath(id string) string {
	if id == "" {
		return "-"
	}
	return url.PathEscape(id)
}
