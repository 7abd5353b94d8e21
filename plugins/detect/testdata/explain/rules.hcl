# The body of the rules processor of tda explain's golden tests: one rule per kind of decision.
  timezone = "UTC"
  # The app's own log may declare override mode (override_enabled lines).
  allow_origins = ["app.log"]

  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 1
    window    = "60s"
    severity  = "HIGH"
  }

  rule "api_deletions" {
    match     = "user_deleted|rows_deleted"
    where     = "via == sql || path =~ \"^/api/\""
    threshold = 10
    window    = "60s"
  }

  rule "bulk_user_creation" {
    match       = "user_created"
    threshold   = 0
    window      = "60s"
    overridable = true
  }

  rule "migration_outside_window" {
    match     = "migration_started"
    threshold = 0
    window    = "10m"
    group_by  = "origin"
    maintenance_window {
      days  = ["sun"]
      start = "02:00"
      end   = "04:00"
    }
  }
