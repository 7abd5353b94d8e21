package sdk

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// actionServer serves the Actions service of one instance.
type actionServer struct {
	tdav1.UnimplementedActionsServer
	s *server
}

// Call runs one action on the instance. The instance stays configured afterwards: the host
// closes it (Close of its kind's service) when it is done with it.
func (as *actionServer) Call(req *tdav1.ActionCall, stream tdav1.Actions_CallServer) (err error) {
	s := as.s
	s.mu.Lock()
	comp, value, instance := s.comp, s.inst.Value(), s.res.Instance
	s.mu.Unlock()
	if comp == nil || value == nil {
		return status.Error(codes.FailedPrecondition, "the instance is not configured in this plugin process")
	}
	action, ok := comp.Action(req.Action)
	if !ok {
		return ActionStatus(ActionNotFound("%s %s has no action %q; it serves: %s", comp.Kind, comp.Name,
			req.Action, actionNames(comp.Actions)))
	}
	s.running.add()
	defer s.running.done()
	ctx := stream.Context()
	defer s.guard("action "+req.Action, &err)
	if action.Starts {
		if err := s.start(ctx); err != nil {
			return ActionStatus(ActionUnavailable("start %s: %v", instance, err))
		}
	}
	// Progress lines go out while Run runs, never after: done is set under sendMu once Run
	// returned, and a line sent later (from a goroutine Run left behind) is dropped.
	var (
		sendMu sync.Mutex
		done   bool
	)
	progress := func(line string) {
		if len(line) > MaxProgressLine {
			line = line[:MaxProgressLine]
		}
		sendMu.Lock()
		defer sendMu.Unlock()
		if done {
			return
		}
		// A failed send is a call the host gave up on: ctx is cancelled and Run sees it.
		_ = stream.Send(&tdav1.ActionReply{Msg: &tdav1.ActionReply_Progress{Progress: validUTF8(line)}})
	}
	result, runErr := func() ([]byte, error) {
		defer func() {
			sendMu.Lock()
			done = true
			sendMu.Unlock()
		}()
		return action.Run(ctx, value, ActionRequest{Args: req.Args, Actor: req.Actor, Progress: progress})
	}()
	if runErr != nil {
		if ctx.Err() != nil && ActionErrorKindOf(runErr) == "" {
			return status.FromContextError(ctx.Err()).Err()
		}
		return ActionStatus(runErr)
	}
	return stream.Send(&tdav1.ActionReply{Msg: &tdav1.ActionReply_Result{Result: result}})
}

// start runs the instance's Start once, for an instance configured for actions only.
func (s *server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	if st, ok := s.inst.Value().(Starter); ok {
		if err := st.Start(ctx); err != nil {
			return err
		}
	}
	s.started = true
	return nil
}

func actionNames(actions []Action) string {
	if len(actions) == 0 {
		return "none"
	}
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// The kind of an action's failure crosses the wire as an ErrorInfo detail of the call's
// status, with PanicDomain and one of these reasons, and a matching code.
var actionKinds = map[ActionErrorKind]struct {
	reason string
	code   codes.Code
}{
	ActionErrInvalid:     {"ACTION_INVALID", codes.InvalidArgument},
	ActionErrNotFound:    {"ACTION_NOT_FOUND", codes.NotFound},
	ActionErrConflict:    {"ACTION_CONFLICT", codes.Aborted},
	ActionErrUnavailable: {"ACTION_UNAVAILABLE", codes.Unavailable},
}

// ActionFailedReason marks an action's failure of no particular kind: the action ran and
// failed (code Unknown), as opposed to a call that never reached it or a plugin that died.
const ActionFailedReason = "ACTION_FAILED"

// ActionStatus is the gRPC status error a plugin answers for an action's error.
func ActionStatus(err error) error {
	kind := ActionErrorKindOf(err)
	reason, code := ActionFailedReason, codes.Unknown
	if k, ok := actionKinds[kind]; ok {
		reason, code = k.reason, k.code
	}
	st := status.New(code, validUTF8(err.Error()))
	if withDetail, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: PanicDomain}); derr == nil {
		st = withDetail
	}
	return st.Err()
}

// ActionErrorFromStatus rebuilds an action's error from the status of a call: an
// *ActionError with its kind, a plain error for an action that failed without one, and ok
// false for a status an action did not make (the plugin died, the call was cancelled, the
// plugin serves no actions).
func ActionErrorFromStatus(err error) (actionErr error, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus {
		return nil, false
	}
	for _, d := range st.Details() {
		info, isInfo := d.(*errdetails.ErrorInfo)
		if !isInfo || info.Domain != PanicDomain {
			continue
		}
		if info.Reason == ActionFailedReason {
			return errors.New(st.Message()), true
		}
		for kind, k := range actionKinds {
			if k.reason == info.Reason {
				return &ActionError{Kind: kind, Err: errors.New(st.Message())}, true
			}
		}
	}
	return nil, false
}

// inflight counts calls in progress and lets a closer wait until there are none.
type inflight struct {
	mu sync.Mutex
	n  int
	// zero is closed when n drops to 0; a new one is made when n leaves 0.
	zero chan struct{}
}

func (f *inflight) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.zero = make(chan struct{})
	}
	f.n++
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.zero)
	}
}

// wait returns once no call is in progress, or ctx's error.
func (f *inflight) wait(ctx context.Context) error {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	zero := f.zero
	f.mu.Unlock()
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
