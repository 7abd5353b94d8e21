source "file" "hosts" {
  paths     = ["/var/log/*.log"]
  follow    = "sometimes"
  read_from = "middle"
}

sink "jsonl" "audit" {
  path      = "./alerts/alerts.jsonl"
  max_files = 2.5
}

pipeline "capture" {
  from = [source.file.hosts]
  to   = [sink.jsonl.audit]
}
