source "file" "hosts" {
  paths = ["/var/log/*.log"]
}

processor "rules" "anomalies" {
  rule "mass_password_reset" {
    match     = "password_changed"
    threshold = 10
    window    = "sixty seconds"
    severity  = "HIGH"
  }
  rule "auth_failures" {
    match     = "login_failed"
    threshold = 5
    window    = "60s"
    severity  = "URGENT"
    trehshold = 3
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
