source "file" "hosts" {
  paths = ["/var/log/*.log"]
}

sink "jsonl" "audit" {
}

pipeline "capture" {
  from = [source.file.hosts]
}
