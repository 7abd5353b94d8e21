# tda's default configuration: tail the example logs, detect incidents, print each alert on the
# console and append it to alerts/alerts.jsonl. `make run` (or `bin/tda run`) runs it.

agent {
  data_dir = "./data"
  # The bundled plugins are built into tda and every block below runs inside the agent's own
  # process (bundled_plugins = "shared_process" puts them in one `tda plugin-serve` process
  # beside it; isolate = true gives a block a process of its own). plugin_dir, by default
  # "plugins" next to the tda binary, holds third-party plugins (docs/plugins.md).
}

# Pin a plugin binary: its sha256 is checked before anything of it runs (`tda plugins` prints
# it), and a plugin process gets only a base set of the agent's environment plus what its
# block passes (docs/plugins.md).
# plugin "detect" {
#   sha256       = "..."
#   memory_limit = "170MiB"
# }
# plugin "snapshot" {
#   inherit_env = ["AWS_*"]
#   env         = { AWS_REGION = "eu-west-1" }
# }

source "file" "examples" {
  paths     = ["./examples/logs/*.log"]
  read_from = "beginning"
}

# The detection in one processor: rules with record_overrides = true parses every line,
# follows override mode and records its changes (what processor "override" does), then counts
# and alerts: the same alerts and audit records as override -> rules (configs/detect.hcl), with
# one trip of every line through the plugin protocol instead of two.
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

sink "console" "screen" {}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

pipeline "detect" {
  from    = [source.file.examples]
  through = [processor.rules.anomalies]
  to      = [sink.console.screen, sink.jsonl.audit]
}
