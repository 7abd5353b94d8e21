source "file" "hosts" {
  paths = ["/var/log/*.log"]
}

processor "rules" "anomalies" {
  rule "auth_failures" {
    match     = "login_failed"
    threshold = 5
    window    = "60s"
  }
}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipeline "detect" {
  from    = [source.file.hostz]
  through = [processor.rules.anomalise]
  to      = [sink.jsonl.audit, sink.slack.oncall]
}
