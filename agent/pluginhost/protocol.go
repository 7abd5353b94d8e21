package pluginhost

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tda-dev/tda/sdk"
)

// ProtocolError is a plugin that serves none of the protocol versions this tda speaks.
type ProtocolError struct {
	// Path is the binary; Plugin is the name it describes itself with.
	Path   string
	Plugin string
	// Served are the plugin's versions, Spoken the host's, both oldest first.
	Served []int
	Spoken []int
}

func (e *ProtocolError) Error() string {
	name := e.Plugin
	if name == "" {
		name = filepath.Base(e.Path)
	}
	served := "no protocol version"
	if len(e.Served) > 0 {
		served = "protocol " + joinVersions(e.Served)
	}
	msg := fmt.Sprintf("plugin %s serves %s; this tda speaks %s: ", name, served, joinVersions(e.Spoken))
	if len(e.Served) > 0 && e.Served[len(e.Served)-1] < e.Spoken[0] {
		return msg + fmt.Sprintf("rebuild the plugin against a current sdk, or use one built for protocol %s", versionRange(e.Spoken))
	}
	return msg + fmt.Sprintf("upgrade tda or use a plugin built for protocol %s", versionRange(e.Spoken))
}

// joinVersions writes versions as "3, 4".
func joinVersions(vs []int) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ", ")
}

// versionRange writes sorted versions as "1-2" when they follow each other, else as a list.
func versionRange(vs []int) string {
	if len(vs) > 1 && vs[len(vs)-1]-vs[0] == len(vs)-1 {
		return fmt.Sprintf("%d-%d", vs[0], vs[len(vs)-1])
	}
	return joinVersions(vs)
}

// NegotiateProtocol returns the highest version in both served and spoken (each in any
// order), and false when they share none.
func NegotiateProtocol(served, spoken []int) (int, bool) {
	best, ok := 0, false
	for _, a := range served {
		for _, b := range spoken {
			if a == b && a >= 1 && (!ok || a > best) {
				best, ok = a, true
			}
		}
	}
	return best, ok
}

// ParseDescription reads the output of `<plugin> describe` found at path and picks the
// protocol version to speak with it out of spoken (the host's versions, oldest first). A
// plugin that shares no version with the host comes back with its description (so that
// callers can say which components it would have offered) and a *ProtocolError.
func ParseDescription(path string, out []byte, spoken []int) (*sdk.Description, int, error) {
	var d sdk.Description
	if err := json.Unmarshal(out, &d); err != nil {
		return nil, 0, fmt.Errorf("%s describe: malformed output: %w", path, err)
	}
	served := d.Served()
	v, ok := NegotiateProtocol(served, spoken)
	if !ok {
		return &d, 0, &ProtocolError{Path: path, Plugin: d.Name, Served: served, Spoken: spoken}
	}
	return &d, v, nil
}
