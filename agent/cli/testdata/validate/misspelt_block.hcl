source "file" "hosts" {
  paths = ["/var/log/app/*.log"]
}

processor "rules" "anomalies" {
  rule "mass_password_reset" {
    match     = "password_changed"
    threshold = 10
    window    = "60s"
  }
}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipelin "detect" {
  from    = [source.file.hosts]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit]
}
