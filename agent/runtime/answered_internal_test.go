package runtime

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// A Configure that fails ends the instance alone when the plugin answered it (the process
// lives on for the instances that share it), and stops the process when it hung or broke.
func TestAnsweredTellsRefusalsFromBrokenProcesses(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	diags := sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "bad regexp"}}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"diagnostics the plugin returned", live, diags.Err(), true},
		{"a start that failed", live, status.Error(codes.FailedPrecondition, "start sink.x.y: no such dir"), true},
		{"an unknown component", live, status.Error(codes.NotFound, "no sink"), true},
		{"the process is full", live, status.Error(codes.ResourceExhausted, "256 instances"), true},
		{"the connection broke", live, status.Error(codes.Unavailable, "EOF"), false},
		{"a transport error", live, &host.TransportError{Err: status.Error(codes.Unavailable, "EOF")}, false},
		{"the call ran past its deadline", live, status.Error(codes.DeadlineExceeded, "deadline"), false},
		{"the deadline, unwrapped", live, fmt.Errorf("configure: %w", context.DeadlineExceeded), false},
		{"a panic outside a call", live, status.Error(codes.Unknown, "panic"), false},
		{"the agent is stopping", ended, status.Error(codes.FailedPrecondition, "x"), false},
		{"canceled", live, context.Canceled, false},
	} {
		if got := answered(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s (%v): answered %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
	if answered(live, errors.New("host-side")) != true {
		t.Error("an error of the host's own making is not a broken process")
	}
}
