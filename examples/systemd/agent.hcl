# File-tail mode on a host: follow the applications' log files, detect dangerous patterns and
# keep an audit trail of the alerts. Installed as /etc/tda/agent.hcl (see tda.service);
# relative paths are under /var/lib/tda.

agent {
  data_dir = "./data" # checkpoints: the position in every file
}

source "file" "apps" {
  paths     = ["/var/log/flask/*.log", "/var/log/spring/*.log"]
  read_from = "end" # on the first start; afterwards the checkpoints say where to go on
}

processor "override" "flags" {
  timezone = "UTC"
  # The app whose own override_enabled lines may declare override mode; lines from any
  # other file are ignored and reported. Operators can always (tda override on).
  allow_origins = ["/var/log/flask/*.log"]
}

processor "rules" "anomalies" {
  timezone = "UTC"

  # More than 10 password changes in 60s across the app, admins excluded.
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
  }

  # More than 5 failed logins from one IP in 60s.
  rule "auth_failures" {
    match     = "login_failed"
    threshold = 5
    window    = "60s"
    group_by  = "ip"
    severity  = "MEDIUM"
  }
  # All six default rules: configs/detect.hcl.
}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipeline "detect" {
  from    = [source.file.apps]
  through = [processor.override.flags, processor.rules.anomalies]
  to      = [sink.jsonl.audit]
}
