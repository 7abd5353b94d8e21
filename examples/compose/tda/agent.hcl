# Mounted at /etc/tda/agent.hcl in the tda container. Relative paths are under /var/lib/tda.

agent {
  data_dir = "./data"
}

source "docker" "apps" {
  containers         = ["flask_web_1", "spring-web-1"]
  heartbeat_interval = "60s"
  # The apps start before their sidecar: capture their first lines too.
  from_beginning = true
  # Or every container of this Compose project:
  # labels = { "com.docker.compose.project" = "compose" }
}

sink "logfile" "raw" {
  dir = "./logs"
}

sink "jsonl" "heartbeat" {
  path  = "./logs/heartbeat.jsonl"
  kinds = ["heartbeat"]
}

pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.logfile.raw, sink.jsonl.heartbeat]
}
