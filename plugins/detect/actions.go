package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tda-dev/tda/sdk"
)

// The operator actions of processor "rules" (docs/plugins.md, "Actions"). They read the
// instance's configuration and the files they are given; none starts anything, sends or
// writes anywhere but where its request says.
const (
	// ActionExplain replays log files through the detection pipeline and reports, line by
	// line, what detection makes of them (`tda explain`).
	ActionExplain = "explain"
	// ActionTune suggests thresholds from a log history (`tda tune`).
	ActionTune = "tune"
	// ActionDescribeRules lists the rules and their maintenance windows (the agent's
	// migration gate, `tda migrate begin`).
	ActionDescribeRules = "rules.describe"
)

// rulesActions are the actions of processor "rules".
func rulesActions() []sdk.Action {
	return []sdk.Action{
		{Name: ActionExplain, Summary: "Show, line by line, what detection makes of log files", Run: runExplain},
		{Name: ActionTune, Summary: "Suggest rule thresholds from a log history", Run: runTune},
		{Name: ActionDescribeRules, Summary: "List the rules with their thresholds and maintenance windows", Run: runDescribeRules},
	}
}

// LogFile is a file an action reads: Path is where it is (absolute: the plugin's working
// directory is not the operator's), Name how the operator named it, which the output shows
// and which is the lines' origin ("" means Path).
type LogFile struct {
	Path string `json:"path"`
	Name string `json:"name,omitempty"`
}

func (f LogFile) name() string {
	if f.Name != "" {
		return f.Name
	}
	return f.Path
}

// rulesOf returns the *Rules an action runs on.
func rulesOf(component any) (*Rules, error) {
	r, ok := component.(*Rules)
	if !ok {
		return nil, fmt.Errorf("the action runs on processor \"rules\", not on %T", component)
	}
	return r, nil
}

// decodeArgs decodes an action's JSON request strictly: an unknown key is a mistake of the
// caller (a misspelt option would otherwise be ignored).
func decodeArgs(action string, args []byte, into any) error {
	if len(args) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return sdk.ActionInvalid("%s: malformed request: %v", action, err)
	}
	return nil
}

// checkFiles refuses a request without files or with a file without a path.
func checkFiles(action string, files []LogFile) error {
	if len(files) == 0 {
		return sdk.ActionInvalid("%s: name at least one log file", action)
	}
	for i, f := range files {
		if f.Path == "" {
			return sdk.ActionInvalid("%s: file %d has no path", action, i+1)
		}
	}
	return nil
}

// cancelled returns ctx's error every checkEvery lines, so that a long replay stops soon
// after the operator gives up.
const checkEvery = 4096

func cancelled(ctx context.Context, n int) error {
	if n%checkEvery == 0 {
		return ctx.Err()
	}
	return nil
}

// ctxReader ends a read when ctx is done, so that a long read of a history stops soon after
// the operator gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
