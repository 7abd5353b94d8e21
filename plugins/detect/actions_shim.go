package detect

import (
	"context"
	"fmt"
)

// sdkAction and sdkActionRequest have the shape of sdk.Action and sdk.ActionRequest.
type sdkAction struct {
	Name    string
	Summary string
	Starts  bool
	Run     func(ctx context.Context, component any, req sdkActionRequest) ([]byte, error)
}

type sdkActionRequest struct {
	Args     []byte
	Actor    string
	Progress func(line string)
}

type invalidError struct{ err error }

func (e *invalidError) Error() string { return e.err.Error() }

func actionInvalid(format string, a ...any) error {
	return &invalidError{fmt.Errorf(format, a...)}
}

func actionNotFound(format string, a ...any) error {
	return &invalidError{fmt.Errorf(format, a...)}
}
