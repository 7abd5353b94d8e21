package cli

import (
	"testing"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
)

func TestAgentMemoryLimitIsTheSumOfTheConfiguredBounds(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		name string
		hcl  string
		want int64
	}{
		{"the default configuration: one pipeline through one processor to two sinks", "",
			32*mib + 2*mib + 2*mib + 16*mib + 2*16*mib},
		{"the bundled plugins in their own process: no allowance for the processor", `
agent {
  data_dir        = "./data"
  bundled_plugins = "shared_process"
}
source "file" "a" { paths = ["a.log"] }
processor "rules" "r" {}
sink "jsonl" "j" { path = "a.jsonl" }
pipeline "p" {
  from    = [source.file.a]
  through = [processor.rules.r]
  to      = [sink.jsonl.j]
}
`, 32*mib + 2*mib + 2*mib + 16*mib},
		{"larger in-flight bound, a sink with a small buffer, two processors", `
agent {
  data_dir           = "./data"
  max_inflight_bytes = "32MiB"
}
source "file" "a" { paths = ["a.log"] }
processor "override" "o" {}
processor "rules" "r" {}
sink "jsonl" "j" {
  path = "a.jsonl"
  buffer { max_size = "1MiB" }
}
pipeline "p" {
  from    = [source.file.a]
  through = [processor.override.o, processor.rules.r]
  to      = [sink.jsonl.j]
}
`, 32*mib + 32*mib + 2*2*mib + 2*16*mib + 1*mib},
		{"no pipeline", `
agent { data_dir = "./data" }
`, 32 * mib},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var cfg *config.Config
			if tt.hcl == "" {
				c, diags := loader.LoadConfig("")
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				cfg = c
			} else {
				c, diags := config.LoadBytes("t.hcl", []byte(tt.hcl))
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				cfg = c
			}
			if got := agentMemoryLimit(cfg); got != tt.want {
				t.Fatalf("limit %d MiB, want %d MiB", got/mib, tt.want/mib)
			}
		})
	}
}
