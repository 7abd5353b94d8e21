source "file" "hosts" {
  paths = [env("TDA_TEST_UNSET_LOG_DIR")]
}

sink "jsonl" "audit" {
  path = file("./no-such-secret-file")
}

pipeline "capture" {
  from = [source.file.hosts]
  to   = [sink.jsonl.audit]
}
