source "file" "hosts" {
  paths = ["/var/log/*.log"]
  multiline {
    start_pattern = "^(\\d{4}-"
  }
}

processor "rules" "anomalies" {
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role === admin"
    threshold = 10
    window    = "60s"
  }
}

sink "jsonl" "audit" {
  path      = "./alerts/alerts.jsonl"
  file_mode = "rw-r-----"
}

pipeline "detect" {
  from    = [source.file.hosts]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit]
}
