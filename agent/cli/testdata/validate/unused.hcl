source "file" "hosts" {
  paths = ["/var/log/*.log"]
}

source "file" "spare" {
  paths = ["/var/log/spare/*.log"]
}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

sink "console" "screen" {}

pipeline "capture" {
  from = [source.file.hosts]
  to   = [sink.jsonl.audit]
}
