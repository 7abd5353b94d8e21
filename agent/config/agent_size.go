package config

import (
	"math"
	"strconv"
	"strings"
)

// minInflightBytes is the smallest max_inflight_bytes: below it a pipeline would hold back
// its sources after a single ordinary batch.
const minInflightBytes = 64 << 10

// agentByteSize parses a size of the agent block: a whole number of bytes with an optional
// binary unit ("32MiB", "1GiB", "65536"). It refuses what does not fit an int.
func agentByteSize(s string) (int, bool) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, false
	}
	return int(n * mult), true
}
