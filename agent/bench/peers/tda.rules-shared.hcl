# tda.rules.hcl with bundled_plugins = "shared_process": the same detection, with the bundled
# plugins in one `tda plugin-serve` process beside the agent instead of inside it (how tda
# ran them before "in_agent" became the default). file source from the start -> processor
# rules (the six default rules) -> jsonl sink (fsync per batch). Left out: the console sink. Added: one parser, because the
# workload's Spring lines "Failed login for user=X from=IP reason=..." are not a built-in
# login_failed format; with it auth_failures (more than 5 per IP in 60s) sees them, as
# fail2ban's filter does.
# @IN@ input file, @OUT@ alerts file, @DATA@ data_dir.

agent {
  data_dir        = "@DATA@"
  bundled_plugins = "shared_process"
}

source "file" "bench" {
  paths     = ["@IN@"]
  read_from = "beginning"
}

processor "rules" "anomalies" {
  timezone         = "UTC" # zone of Werkzeug, Flask logger and Spring Boot 2 timestamps
  record_overrides = true  # follow and record override mode here (no override processor)
  default_ttl      = "1h"  # an override declared without ttl
  max_ttl          = "24h"
  # The apps whose own override_enabled lines may declare override mode (globs over file
  # paths and container names). Lines from any other origin are ignored and reported.
  allow_origins = ["flask-*.log", "flask_web_*"]
  # A line dated more than this ahead of its arrival is counted at its arrival time.
  max_future_skew = "5m"

  # The workload's Spring "Failed login for user=X from=IP" lines (not a built-in format).
  parser "bench_failed_login" {
    regex = "Failed login for user=(?P<username>\\S+) from=(?P<ip>[0-9A-Fa-f.:]+)"
    event = "login_failed"
  }

  # The app's own gunicorn access_log_format, its proxies, and what its endpoints mean when an
  # access line alone cannot say it (docs/detection.md: gunicorn formats, Client IP behind
  # proxies, Route blocks):
  # gunicorn_formats = ["%({x-forwarded-for}i)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""]
  # trusted_proxies  = ["10.0.0.0/8"]
  # route {
  #   method = "POST"
  #   path   = "/login"
  #   status = [200] # the login form re-rendered: a failed login
  #   event  = "login_failed"
  # }

  # SQL deletes of session, token and cache tables are housekeeping and do not count: the
  # default table policy decides (a `tables` block changes it).

  # More than 10 password changes in 60s across the app, admins excluded.
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
    realert   = "30m"
  }

  # More than 20 accounts created in 60s; recorded as suppressed during declared override work.
  rule "bulk_user_creation" {
    match       = "user_created"
    threshold   = 20
    window      = "60s"
    severity    = "MEDIUM"
    overridable = true
  }

  # More than 10 deletions in 60s (audit lines, DELETE requests, SQL echo).
  rule "bulk_deletion" {
    match     = "user_deleted|rows_deleted"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
    realert   = "30m"
  }

  # A migration outside the maintenance window; one incident per app (origin).
  rule "migration_outside_window" {
    match     = "migration_started"
    threshold = 0
    window    = "10m"
    group_by  = "origin"
    severity  = "MEDIUM"
    maintenance_window {
      days     = ["sun"]
      start    = "02:00"
      end      = "04:00"
      timezone = "UTC"
    }
  }

  # A migration that no approved request matches (tda migrate request / approve), inside
  # the window or not; one incident per app (origin).
  rule "unapproved_migration" {
    match            = "migration_started"
    threshold        = 0
    window           = "10m"
    group_by         = "origin"
    severity         = "MEDIUM"
    require_approval = true
  }

  # More than 5 failed logins from one IP in 60s.
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
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.alerts]
}
