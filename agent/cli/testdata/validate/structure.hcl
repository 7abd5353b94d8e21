agent {
  data_dir            = "./data"
  checkpoint_interval = "often"
}

source "file" "hosts" {
  paths = ["/var/log/*.log"]
}

processor "override" "flags" {}

sink "jsonl" "audit" {
  path     = "./alerts/alerts.jsonl"
  fallback = sink.jsonl.audit
  queue    = "disk"
}

pipeline "one" {
  from    = [source.file.hosts]
  through = [processor.override.flags]
  to      = [source.file.hosts]
}

pipeline "two" {
  from    = [source.file.hosts]
  through = [processor.override.flags]
  to      = [sink.jsonl.audit]
}

sinks "console" "screen" {}
