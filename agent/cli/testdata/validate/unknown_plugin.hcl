source "fiel" "hosts" {
  paths = ["/var/log/*.log"]
}

sink "jsnl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipeline "capture" {
  from = [source.fiel.hosts]
  to   = [sink.jsnl.audit]
}
