source "file" "hosts" { paths = ["/var/log/app/*.log"] }
processor "rules" "r" {}
sink "jsonl" "audit" { path = "alerts.jsonl" }
pipeline "detect" {
  from    = [source.file.hosts]
  through = [processor.rules.r]
  to      = [sink.jsonl.audit]
}
