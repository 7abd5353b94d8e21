# Fleet mode, edge agent: one per host or pod (sidecar), next to a replica of the app. It
# tails the app's logs, keeps the raw capture on the host, parses every line and publishes
# only the detection events (a few percent of the lines) to NATS JetStream, where the
# detector agents (configs/fleet-detector.hcl) count them across every replica.
#
#   TDA_HOST=web-1 NATS_URL=nats://nats-1:4222,nats://nats-2:4222 NATS_PASSWORD=... \
#     bin/tda run -config configs/fleet-edge.hcl
#
# make fleet-demo runs three of them, with two detectors, on a local JetStream cluster.
#
# See docs/fleet.md for the topology, sizing and what happens when NATS is away.

agent {
  data_dir = "./data" # checkpoints, and the events waiting on disk while NATS is away
}

source "file" "app" {
  paths = [env("TDA_APP_LOGS", "/var/log/flask/*.log")]
}

# Parses the lines (the detection events get their fields); detection itself runs on the
# detectors. Keep the override and table settings in step with the detectors' rules block.
processor "override" "parse" {
  timezone      = "UTC"
  allow_origins = [env("TDA_APP_LOGS", "/var/log/flask/*.log")]
}

# The raw capture stays on the host.
sink "logfile" "raw" {
  dir = "./logs"
}

sink "nats" "fleet" {
  # Several URLs, comma-separated: the client fails over and learns the rest of the cluster.
  servers  = [env("NATS_URL", "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222")]
  replicas = 3                        # the stream survives the loss of one node
  host     = env("TDA_HOST", "web-1") # the replica's name in the detectors' alerts
  # Credentials: user/password here; or token, nkey_seed_file, creds_file, and tls_ca,
  # tls_cert, tls_key for TLS and mutual TLS (plugins/nats/README.md); tda validate checks
  # the files.
  # user     = "edge"
  # password = env("NATS_PASSWORD")
  # nkey_seed_file = "/etc/tda/edge.nk"
  # tls_ca         = "/etc/tda/nats-ca.pem"
  # tls_cert       = "/etc/tda/edge.pem"
  # tls_key        = "/etc/tda/edge-key.pem"
  # Events whose rules count per IP go to the partition of their IP (auth_failures groups
  # by ip); every other event type to the app's partition.
  partition_by = {
    login_failed = "ip"
  }
  # While NATS is unreachable the events wait on disk, in order, and go out once it is back;
  # their own times keep the detectors' windows right.
  buffer {
    when_full     = "spill"
    max_disk_size = "1GiB"
  }
}

pipeline "capture" {
  from = [source.file.app]
  to   = [sink.logfile.raw]
}

pipeline "edge" {
  from    = [source.file.app]
  through = [processor.override.parse]
  to      = [sink.nats.fleet]
}
