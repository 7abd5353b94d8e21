# tda, the default detection in two steps (configs/detect.hcl): file source from the start
# -> processor override -> processor rules with the six default rules -> jsonl sink (fsync per
# batch). Left out: the console sink. Added: one parser, because the workload's Spring lines
# "Failed login for user=X from=IP reason=..." are not a built-in login_failed format (the
# built-in ones are 401/403 POSTs to a login path, Spring Security events and audit lines);
# with it auth_failures (more than 5 per IP in 60s) sees them, as fail2ban's filter does.
# @IN@ input file, @OUT@ alerts file, @DATA@ data_dir.

agent {
  data_dir = "@DATA@"
}

source "file" "bench" {
  paths     = ["@IN@"]
  read_from = "beginning"
}

processor "override" "flags" {
  timezone    = "UTC"
  default_ttl = "1h"
  max_ttl     = "24h"
  allow_origins   = ["flask-*.log", "flask_web_*"]
  max_future_skew = "5m"

  parser "bench_failed_login" {
    regex = "Failed login for user=(?P<username>\\S+) from=(?P<ip>[0-9A-Fa-f.:]+)"
    event = "login_failed"
  }
}

processor "rules" "anomalies" {
  timezone = "UTC"

  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
    realert   = "30m"
  }

  rule "bulk_user_creation" {
    match       = "user_created"
    threshold   = 20
    window      = "60s"
    severity    = "MEDIUM"
    overridable = true
  }

  rule "bulk_deletion" {
    match     = "user_deleted|rows_deleted"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
    realert   = "30m"
  }

  rule "migration_outside_window" {
    match            = "migration_started"
    threshold        = 0
    window           = "10m"
    group_by         = "origin"
    severity         = "MEDIUM"
    maintenance_window {
      days     = ["sun"]
      start    = "02:00"
      end      = "04:00"
      timezone = "UTC"
    }
  }

  rule "unapproved_migration" {
    match            = "migration_started"
    threshold        = 0
    window           = "10m"
    group_by         = "origin"
    severity         = "MEDIUM"
    require_approval = true
  }

  rule "auth_failures" {
    match     = "login_failed"
    threshold = 5
    window    = "60s"
    group_by  = "ip"
    severity  = "MEDIUM"
    max_keys  = 100000
  }
}

sink "jsonl" "alerts" {
  path = "@OUT@"
}

pipeline "detect" {
  from    = [source.file.bench]
  through = [processor.override.flags, processor.rules.anomalies]
  to      = [sink.jsonl.alerts]
}
