package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/tda-dev/tda/agent/ops"
)

// recovery answers GET /api/incidents/{id}/recovery: each snapshot target's recovery points
// placed before, during or after the incident's first event, with the default a restore takes.
func (s *Server) recovery(w http.ResponseWriter, r *http.Request, _ principal) error {
	rec, err := s.opts.Ops.Recovery(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}

// Recovery implements ops.Operations.
func (c *Client) Recovery(ctx context.Context, incident string) (ops.IncidentRecovery, error) {
	var out ops.IncidentRecovery
	return out, c.do(ctx, http.MethodGet, "/api/incidents/"+url.PathEscape(incident)+"/recovery", nil, &out)
}
