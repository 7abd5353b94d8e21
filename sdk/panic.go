package sdk

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A panic inside a component's call (Write, Process, Snapshot, Restore) is recovered by the
// SDK and answered as a failed call, not a dead plugin: the process is alive and serves the
// next call. The answer is a gRPC status with code Internal (what an older agent already
// understood as a failed call) carrying an ErrorInfo detail with PanicReason and
// PanicDomain, so that the agent counts it against the batch's attempts and does not
// restart the plugin for it.
const (
	PanicReason = "COMPONENT_PANIC"
	PanicDomain = "tda.dev"
)

// PanicError is a recovered panic of a component called in the host's own process.
type PanicError struct {
	// Call is what panicked ("write", "process", ...).
	Call string
	// Value is the panic's value, printed.
	Value string
}

func (e *PanicError) Error() string { return fmt.Sprintf("%s panicked: %s", e.Call, e.Value) }

// NewPanicError returns the error for a recovered panic value r during call.
func NewPanicError(call string, r any) *PanicError {
	return &PanicError{Call: call, Value: fmt.Sprint(r)}
}

// PanicStatus returns the gRPC status error a plugin answers for a recovered panic.
func PanicStatus(call string, r any) error {
	st := status.New(codes.Internal, NewPanicError(call, r).Error())
	if withDetail, err := st.WithDetails(&errdetails.ErrorInfo{Reason: PanicReason, Domain: PanicDomain,
		Metadata: map[string]string{"call": call}}); err == nil {
		st = withDetail
	}
	return st.Err()
}

// IsPanic reports whether err is a recovered panic of a component: a PanicError, or a gRPC
// status made by PanicStatus, anywhere in err's chain.
func IsPanic(err error) bool {
	if err == nil {
		return false
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return true
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Internal {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Reason == PanicReason && info.Domain == PanicDomain {
			return true
		}
	}
	return false
}
