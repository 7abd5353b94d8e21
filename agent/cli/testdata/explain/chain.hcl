# tda explain follows the pipeline: the override processor parses first, with its own parser
# block, and the rules processor reuses what it found.
processor "override" "flags" {
  parser "invoice" {
    regex = "^(?P<time>\\S+) VOID invoice=(?P<invoice>\\d+) by=(?P<actor>\\w+)$"
    event = "invoice_voided"
  }
}

processor "rules" "anomalies" {
  rule "mass_voids" {
    match     = "invoice_voided"
    threshold = 1
    window    = "60s"
  }
}

source "file" "app" {
  paths = ["./app.log"]
}

sink "console" "screen" {}

pipeline "detect" {
  from    = [source.file.app]
  through = [processor.override.flags, processor.rules.anomalies]
  to      = [sink.console.screen]
}
