storage "file" {
  path = "/var/lib/lockbox"
}

listener "tcp" {
  address                  = "127.0.0.1:8200"
  tls_cert_file            = "/etc/lockbox/tls.crt"
  tls_key_file             = "/etc/lockbox/tls.key"
  http_read_header_timeout = "10s"
  http_idle_timeout        = "5m"
  max_request_duration     = "90s"
  max_connections          = 4096
}

plugin_directory = "/usr/lib/lockbox/plugins"
max_request_size = 33554432
log_level        = "info"
