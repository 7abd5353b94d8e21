package api

import (
	"net/http"

	"github.com/tda-dev/tda/agent/ops"
)

// deadLetterBody is the body of a replay or a drop: who (shared tokens and the socket) and why.
type deadLetterBody struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// letterID reads the {id} of a dead-letter route: a plain decimal uint64, or a 400.
func letterID(r *http.Request) (uint64, error) {
	return ops.ParseDeadLetterID(r.PathValue("id"))
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request, _ principal) error {
	list, err := s.opts.Ops.DeadLetters(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) deadLetter(w http.ResponseWriter, r *http.Request, _ principal) error {
	id, err := letterID(r)
	if err != nil {
		return err
	}
	d, err := s.opts.Ops.DeadLetter(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// actOnLetter handles a replay (replay true) or a drop. The id is checked before the body,
// so a malformed id is a 400 whatever the body says.
func (s *Server) actOnLetter(replay bool) handler {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		id, err := letterID(r)
		if err != nil {
			return err
		}
		var b deadLetterBody
		if err := decode(r, &b); err != nil {
			return err
		}
		by, err := actor(p, b.By)
		if err != nil {
			return err
		}
		req := ops.DeadLetterAction{ID: id, Reason: b.Reason}
		if replay {
			l, err := s.opts.Ops.ReplayDeadLetter(r.Context(), by, req)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, l)
			return nil
		}
		l, err := s.opts.Ops.DropDeadLetter(r.Context(), by, req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, l)
		return nil
	}
}
