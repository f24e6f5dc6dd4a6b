path "secret/*" { capabilities = ["read", "list"] }
path "secret/+/config" { capabilities = ["deny"] }
path "sys/mounts/*" { capabilities = ["create", "update", "sudo"] }
path "auth/token/lookup-self" { policy = "read" }
