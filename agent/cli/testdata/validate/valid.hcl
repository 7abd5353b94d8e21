agent {
  data_dir = "./data"
}

source "file" "hosts" {
  paths = ["/var/log/flask/*.log"]
}

processor "rules" "anomalies" {
  rule "auth_failures" {
    match     = "login_failed"
    threshold = 5
    window    = "60s"
    group_by  = "ip"
    severity  = "MEDIUM"
  }
}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipeline "detect" {
  from    = [source.file.hosts]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit]
}
