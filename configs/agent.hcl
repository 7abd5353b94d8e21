# tda's default configuration: tail the example logs, detect incidents, print each alert on the
# console and append it to alerts/alerts.jsonl. `make run` (or `bin/tda run`) runs it.

agent {
  data_dir = "./data"
  # plugin_dir defaults to "plugins" next to the tda binary (bin/plugins after make build).
}

source "file" "examples" {
  paths     = ["./examples/logs/*.log"]
  read_from = "beginning"
}

sink "console" "screen" {}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipeline "detect" {
  from = [source.file.examples]
  to   = [sink.console.screen, sink.jsonl.audit]
}
