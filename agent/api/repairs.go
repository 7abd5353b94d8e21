package api

import (
	"net/http"

	"github.com/tda-dev/tda/agent/ops"
)

// Repairs: POST /api/repairs/plan makes a repair plan (nothing is written); POST
// /api/repairs/apply applies it after a pre-repair snapshot, once the body's confirm names the
// live database. Both answer 503 when the agent has no snapshot target.

func (s *Server) repairService() (ops.Repairs, error) {
	if s.opts.Repairs == nil {
		return nil, &ops.Error{Kind: ops.KindUnavailable,
			Message: "repairs run in the agent with a sink \"snapshot\" block; use tda repair where the databases are reachable"}
	}
	return s.opts.Repairs, nil
}

func (s *Server) planRepair(w http.ResponseWriter, r *http.Request, _ principal) error {
	rs, err := s.repairService()
	if err != nil {
		return err
	}
	var b ops.RepairRequest
	if err := decode(r, &b); err != nil {
		return err
	}
	out, err := rs.PlanRepair(r.Context(), b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) applyRepair(w http.ResponseWriter, r *http.Request, p principal) error {
	rs, err := s.repairService()
	if err != nil {
		return err
	}
	var b ops.RepairRequest
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	out, err := rs.ApplyRepair(r.Context(), by, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
