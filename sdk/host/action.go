package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// ErrNoActions is the error of an action called on a plugin that serves none: one built
// with an SDK from before operator actions.
var ErrNoActions = errors.New("the plugin serves no operator actions (it was built with an older tda sdk; rebuild it)")

// CallAction runs the operator action named action on the instance c reaches, which the
// host configured (Configuration.ActionsOnly) and closes afterwards. progress receives the
// lines the action streams (it may be nil). It returns the action's JSON result, or:
//   - the action's error, an *sdk.ActionError when the action said what kind it is;
//   - ctx's error when ctx ended first (the plugin's action sees its context cancelled);
//   - an error for which sdk.IsPanic holds when the action panicked;
//   - ErrNoActions for a plugin that serves no actions;
//   - a *TransportError when the plugin could not be reached or died during the call.
func (c *Conn) CallAction(ctx context.Context, action string, args []byte, actor string, progress func(string)) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := tdav1.NewActionsClient(c.cc).Call(ctx, &tdav1.ActionCall{Action: action, Args: args, Actor: actor})
	if err != nil {
		return nil, actionCallError(ctx, err)
	}
	for {
		reply, err := stream.Recv()
		if err == io.EOF {
			return nil, &TransportError{Err: fmt.Errorf("action %s ended without a result", action)}
		}
		if err != nil {
			return nil, actionCallError(ctx, err)
		}
		switch msg := reply.Msg.(type) {
		case *tdav1.ActionReply_Progress:
			if progress != nil {
				progress(msg.Progress)
			}
		case *tdav1.ActionReply_Result:
			return msg.Result, nil
		}
	}
}

// actionCallError sorts the error of an action's call into the kinds CallAction documents.
func actionCallError(ctx context.Context, err error) error {
	if actionErr, ok := sdk.ActionErrorFromStatus(err); ok {
		return actionErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if sdk.IsPanic(err) {
		return err
	}
	switch status.Code(err) {
	case codes.Unimplemented:
		return ErrNoActions
	case codes.FailedPrecondition:
		// The plugin answered: the instance was not configured first.
		return errors.New(status.Convert(err).Message())
	}
	return &TransportError{Err: err}
}
