# Fleet mode, detector agent: two or more share the partitions of the fleet's detection
# events (published by the edge agents, configs/fleet-edge.hcl), run the rules across every
# replica, and alert once. A detector acknowledges the JetStream messages of its partitions
# only once this agent committed what they carried (its sinks accepted the alerts, and the
# windows are stored); a detector that dies has its partitions taken over within lease_ttl
# by another, which rebuilds the windows of incidents in progress and judges exactly what
# the dead one had not committed.
#
#   TDA_MEMBER=detector-1 NATS_URL=nats://nats-1:4222,nats://nats-2:4222 \
#     bin/tda run -config configs/fleet-detector.hcl
#
# See docs/fleet.md.

agent {
  data_dir = "./data" # checkpoints: the position read in each partition, with the windows
}

source "nats" "fleet" {
  servers   = [env("NATS_URL", "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222")]
  replicas  = 3
  member    = env("TDA_MEMBER", "detector-1") # unique in the group, stable across restarts
  lease_ttl = "10s"
  # At least the longest rule window plus lateness: what a detector taking a partition over
  # reads again to rebuild the windows (migration_outside_window counts over 10m).
  takeover_replay = "15m"
  # Messages of a partition read and waiting for a commit; while a sink is stuck the
  # partition is not read further than this.
  # max_unacked = 20000
  # Credentials: one of user/password, token, nkey_seed_file or creds_file; tls_ca, and
  # tls_cert/tls_key where the servers require client certificates. tda validate checks
  # the files (plugins/nats/README.md).
  # user     = "detector"
  # password = env("NATS_PASSWORD")
  # creds_file = "/etc/tda/detector.creds"
  # tls_ca     = "/etc/tda/nats-ca.pem"
}

# The rules count the events of every replica together (across_origins): 4 resets on each
# of three replicas are 12 for the app.
processor "rules" "fleet" {
  timezone = "UTC"
  # The app's own override lines reach the detectors with the edges' events; name the log
  # paths (as the edges see them) whose lines may declare override mode.
  # allow_origins = ["/var/log/flask/*.log"]

  rule "mass_password_reset" {
    match          = "password_changed"
    unless         = "actor_role == admin"
    threshold      = 10
    window         = "60s"
    severity       = "HIGH"
    realert        = "30m"
    across_origins = true
  }

  rule "bulk_deletion" {
    match          = "user_deleted|rows_deleted"
    threshold      = 10
    window         = "60s"
    severity       = "HIGH"
    realert        = "30m"
    across_origins = true
  }

  rule "bulk_user_creation" {
    match          = "user_created"
    threshold      = 20
    window         = "60s"
    severity       = "MEDIUM"
    overridable    = true
    across_origins = true
  }

  # An attacker's failed logins spread over the replicas: per IP, across every replica.
  rule "auth_failures" {
    match          = "login_failed"
    threshold      = 20
    window         = "5m"
    group_by       = "ip"
    severity       = "MEDIUM"
    across_origins = true
  }
}

sink "jsonl" "audit" {
  path = "./alerts/alerts.jsonl"
}

sink "console" "screen" {}

# The page: its message says how the count splits over the replicas.
# sink "slack" "oncall" {
#   webhook_url = env("SLACK_WEBHOOK_URL")
# }

pipeline "detect" {
  from    = [source.nats.fleet]
  through = [processor.rules.fleet]
  to      = [sink.jsonl.audit, sink.console.screen]
}
