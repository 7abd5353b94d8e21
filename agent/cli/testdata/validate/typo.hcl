source "file" "hosts" {
  pathz = ["/var/log/flask/*.log"]
}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipeline "capture" {
  from = [source.file.hosts]
  to   = [sink.jsonl.audit]
}
