# Raw capture of the application containers (phase 1): every line of flask_web_1 and
# spring-web-1 goes to logs/<container>.log, prefixed with Docker's timestamp, across restarts
# of the containers, of the Docker daemon and of tda itself. A heartbeat every minute lists the
# watched containers and their state in logs/heartbeat.jsonl (and in tda's own log).
#
#   bin/tda run -config configs/capture.hcl
#
# In the sidecar image this file is mounted at /etc/tda/agent.hcl; see docs/docker.md.

agent {
  data_dir = "./data" # checkpoints: the last line captured of each container
}

source "docker" "apps" {
  containers         = ["flask_web_1", "spring-web-1"]
  heartbeat_interval = "60s"
  # Capture everything, as `docker logs -f` does, including what the containers wrote before
  # tda first started (afterwards the checkpoints say where to go on).
  from_beginning = true
}

sink "logfile" "raw" {
  dir = "./logs" # logs/flask_web_1.log, logs/spring-web-1.log
  # Capture only: nothing else to hold back, so a slow disk makes the Docker source wait
  # (it resumes from its checkpoint) rather than drop lines, logfile's default.
  buffer {
    when_full = "block"
  }
}

sink "jsonl" "heartbeat" {
  path  = "./logs/heartbeat.jsonl"
  kinds = ["heartbeat"]
}

pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.logfile.raw, sink.jsonl.heartbeat]
}
