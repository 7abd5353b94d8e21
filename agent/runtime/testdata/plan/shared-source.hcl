agent {
  max_inflight_batches = 4
  max_inflight_bytes   = "8MiB"
}
source "docker" "apps" {}
processor "override" "flags" {}
processor "rules" "r" {}
sink "logfile" "raw" { dir = "logs" }
sink "jsonl" "audit" { path = "alerts.jsonl" }
sink "email" "ops" {}
sink "slack" "oncall" {
  fallback = sink.email.ops
}
pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.logfile.raw]
}
pipeline "detect" {
  from    = [source.docker.apps]
  through = [processor.override.flags, processor.rules.r]
  to      = [sink.jsonl.audit, sink.slack.oncall]
}
