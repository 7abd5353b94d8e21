source "file" "hosts" {
  paths = ["/var/log/app/*.log"]
}

sink "jsonnl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipeline "capture" {
  from = [source.file.hosts]
  to   = [sink.jsonl.audit]
}
