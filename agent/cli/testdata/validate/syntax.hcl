source "file" "hosts" {
  paths = ["/var/log/*.log"
}
