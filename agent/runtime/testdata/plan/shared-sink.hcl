source "file" "a" {}
source "file" "b" {}
source "file" "c" {}
sink "jsonl" "one" {}
sink "jsonl" "two" {}
sink "jsonl" "three" {}
pipeline "p1" {
  from = [source.file.a]
  to   = [sink.jsonl.one]
}
pipeline "p2" {
  from = [source.file.b]
  to   = [sink.jsonl.two]
}
pipeline "p3" {
  from = [source.file.c]
  to   = [sink.jsonl.two, sink.jsonl.three]
}
pipeline "p4" {
  from = [source.file.c]
  to   = [sink.jsonl.three]
}
