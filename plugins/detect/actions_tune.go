package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tda-dev/tda/plugins/detect/tune"

	"github.com/tda-dev/tda/sdk"
)

// TuneRequest is the request of action "tune".
type TuneRequest struct {
	// Files are the log history, read as tda tune reads it.
	Files []LogFile `json:"files"`
	// Margin is the relative margin of a suggested threshold above the normal p99 (absent:
	// tune.DefaultMargin, 0.5); it must not be negative.
	Margin *float64 `json:"margin,omitempty"`
	// JSON asks for the report as indented JSON instead of a table.
	JSON bool `json:"json,omitempty"`
}

// TuneResult is the result of action "tune": the report as `tda tune` prints it (a table, or
// indented JSON).
type TuneResult struct {
	Output string `json:"output"`
}

func runTune(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	p, err := rulesOf(component)
	if err != nil {
		return nil, err
	}
	var r TuneRequest
	if err := decodeArgs(ActionTune, req.Args, &r); err != nil {
		return nil, err
	}
	if err := checkFiles(ActionTune, r.Files); err != nil {
		return nil, err
	}
	margin := tune.DefaultMargin
	if r.Margin != nil {
		margin = *r.Margin
	}
	if margin < 0 {
		return nil, sdk.ActionInvalid("the margin must not be negative")
	}
	tu := tune.New(p.rules, p.parseOptions)
	for _, file := range r.Files {
		if err := tuneFile(ctx, tu, file); err != nil {
			return nil, err
		}
	}
	rep := tu.Report(margin)
	var out bytes.Buffer
	if r.JSON {
		err = rep.WriteJSON(&out)
	} else {
		err = rep.WriteTable(&out)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(TuneResult{Output: out.String()})
}

// tuneFile adds a file of the history; the lines' origin is the file's name.
func tuneFile(ctx context.Context, tu *tune.Tuner, file LogFile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(file.Path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return sdk.ActionNotFound("%s: %v", file.name(), err)
		}
		return sdk.ActionInvalid("%s: %v", file.name(), err)
	}
	defer f.Close()
	if err := tu.AddReader(file.name(), &ctxReader{ctx: ctx, r: f}); err != nil {
		return fmt.Errorf("%s: %w", file.name(), err)
	}
	return nil
}
