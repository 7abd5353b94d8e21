package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tda-dev/tda/agent/deadletter"
)

// DeadLetterDetail is one dead letter with its events, each the JSON object of an sdk.Event.
type DeadLetterDetail struct {
	Letter deadletter.Letter `json:"letter"`
	Events []json.RawMessage `json:"events"`
}

// DeadLetterAction replays or drops one dead letter; the reason goes to the audit log.
type DeadLetterAction struct {
	ID     uint64 `json:"id"`
	Reason string `json:"reason"`
}

// DeadLetterCount is how many dead letters one instance holds.
type DeadLetterCount struct {
	Instance string `json:"instance"`
	Count    int    `json:"count"`
	Events   int    `json:"events"`
}

// maxDeadLetterID is the longest decimal uint64 ("18446744073709551615").
const maxDeadLetterID = 20

// ParseDeadLetterID reads a dead letter's id as the operator or a URL gives it: a decimal
// uint64 written plainly, without sign, spaces or leading zeros. Anything else is an Invalid
// error that says what an id looks like.
func ParseDeadLetterID(s string) (uint64, error) {
	bad := func() (uint64, error) {
		shown := s
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
		return 0, errorf(KindInvalid, "%q is not a dead letter id: ids are decimal numbers such as 12 (tda deadletter list shows them)", shown)
	}
	if s == "" || len(s) > maxDeadLetterID || (len(s) > 1 && s[0] == '0') {
		return bad()
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return bad()
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return bad()
	}
	return n, nil
}

// errNoLetters is returned where no dead-letter store is reachable: the CLI opened the state
// store itself, or the agent was built without one.
func errNoLetters() error {
	return errorf(KindUnavailable, "dead letters are kept by the running agent: start it (tda run), or reach it with -addr")
}

// letterError maps the store's errors to the operations' kinds.
func letterError(id uint64, err error) error {
	if errors.Is(err, deadletter.ErrNotFound) {
		return errorf(KindNotFound, "no dead letter %d: it was replayed or dropped already, or never existed (tda deadletter list)", id)
	}
	return err
}

// DeadLetters implements Operations.
func (s *Service) DeadLetters(ctx context.Context) ([]deadletter.Letter, error) {
	if s.letters == nil {
		return nil, errNoLetters()
	}
	list, err := s.letters.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	if list == nil {
		list = []deadletter.Letter{}
	}
	return list, nil
}

// DeadLetter implements Operations.
func (s *Service) DeadLetter(ctx context.Context, id uint64) (DeadLetterDetail, error) {
	if s.letters == nil {
		return DeadLetterDetail{}, errNoLetters()
	}
	l, events, err := s.letters.Show(ctx, id)
	if err != nil {
		return DeadLetterDetail{}, letterError(id, err)
	}
	if events == nil {
		events = []json.RawMessage{}
	}
	return DeadLetterDetail{Letter: l, Events: events}, nil
}

// ReplayDeadLetter implements Operations.
func (s *Service) ReplayDeadLetter(ctx context.Context, by Actor, req DeadLetterAction) (deadletter.Letter, error) {
	return s.actOnLetter(ctx, by, req, ActionDeadLetterReplay, s.lettersReplay)
}

// DropDeadLetter implements Operations.
func (s *Service) DropDeadLetter(ctx context.Context, by Actor, req DeadLetterAction) (deadletter.Letter, error) {
	return s.actOnLetter(ctx, by, req, ActionDeadLetterDrop, s.lettersDrop)
}

func (s *Service) lettersReplay(ctx context.Context, id uint64) error {
	return s.letters.Replay(ctx, id)
}
func (s *Service) lettersDrop(ctx context.Context, id uint64) error { return s.letters.Drop(ctx, id) }

// actOnLetter checks the request, learns which instance the letter belongs to, runs do and
// audits the outcome. Every request with a valid actor is audited, refusals included: the
// audit entry names the letter (target), the instance and why.
func (s *Service) actOnLetter(ctx context.Context, by Actor, req DeadLetterAction, action string,
	do func(context.Context, uint64) error) (deadletter.Letter, error) {
	by, err := s.actor(by)
	if err != nil {
		return deadletter.Letter{}, err
	}
	if err := checkLine("reason", req.Reason); err != nil {
		return deadletter.Letter{}, err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	var l deadletter.Letter
	detail := map[string]string{}
	err = func() error {
		if req.Reason == "" {
			verb := "replay"
			if action == ActionDeadLetterDrop {
				verb = "drop"
			}
			return errorf(KindInvalid, "a reason is required: say why you %s this dead letter (-reason)", verb)
		}
		if s.letters == nil {
			return errNoLetters()
		}
		var err error
		l, _, err = s.letters.Show(ctx, req.ID)
		if err != nil {
			return letterError(req.ID, err)
		}
		detail["instance"] = l.Instance
		if l.Pipeline != "" {
			detail["pipeline"] = l.Pipeline
		}
		detail["letter_reason"] = string(l.Reason)
		detail["events"] = strconv.Itoa(l.Events)
		if err := do(ctx, req.ID); err != nil {
			return letterError(req.ID, err)
		}
		return nil
	}()
	s.audit(by, action, strconv.FormatUint(req.ID, 10), req.Reason, detail, err)
	if err != nil {
		return deadletter.Letter{}, err
	}
	return l, nil
}

// deadLetterCounts counts the letters per instance, by instance.
func deadLetterCounts(list []deadletter.Letter) []DeadLetterCount {
	by := map[string]*DeadLetterCount{}
	for _, l := range list {
		c, ok := by[l.Instance]
		if !ok {
			c = &DeadLetterCount{Instance: l.Instance}
			by[l.Instance] = c
		}
		c.Count++
		c.Events += l.Events
	}
	out := make([]DeadLetterCount, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

// addDeadLetters puts the dead letters into the state: a count per instance, on the
// instance's component and as a degraded reason. The runtime may already call the component
// unhealthy because of them; its reason then stands alone, with the count added to the
// component.
func (s *Service) addDeadLetters(ctx context.Context, st *SystemState) {
	if s.letters == nil {
		return
	}
	list, err := s.letters.List(ctx)
	if KindOf(err) == KindUnavailable {
		return // no store to count: nothing was dead-lettered through it
	}
	if err != nil {
		st.Degraded = append(st.Degraded, "the dead letters could not be read ("+err.Error()+"): check the agent's log")
		return
	}
	st.DeadLetters = deadLetterCounts(list)
	for _, c := range st.DeadLetters {
		said := false
		for i := range st.Components {
			comp := &st.Components[i]
			if comp.Address != c.Instance {
				continue
			}
			comp.DeadLetters = c.Count
			said = !comp.Healthy && strings.Contains(comp.Reason, "dead letter")
		}
		if said {
			continue
		}
		noun := "dead letter"
		if c.Count > 1 {
			noun = "dead letters"
		}
		st.Degraded = append(st.Degraded, fmt.Sprintf(
			"%s: %d %s (%d events) kept after it gave up on them: fix the cause, then tda deadletter replay, or drop them",
			c.Instance, c.Count, noun, c.Events))
	}
}
