source "file" "hosts" {}
source "docker" "apps" {}
source "schedule" "nightly" {}
processor "rules" "a" {}
processor "rules" "b" {}
sink "logfile" "raw" {}
sink "jsonl" "audit" {}
sink "jsonl" "other" {}
sink "email" "ops" {}
sink "slack" "oncall" { fallback = sink.email.ops }
sink "webhook" "hook" { fallback = sink.email.ops }
pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.logfile.raw]
}
pipeline "hosts" {
  from    = [source.file.hosts]
  through = [processor.rules.a]
  to      = [sink.jsonl.audit, sink.slack.oncall]
}
pipeline "nightly" {
  from    = [source.schedule.nightly]
  through = [processor.rules.b]
  to      = [sink.jsonl.other, sink.webhook.hook]
}
