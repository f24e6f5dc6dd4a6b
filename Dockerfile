# syntax=docker/dockerfile:1
# lockbox image: the lockbox binary plus the example plugins.
#
#   docker build -t registry.example.com/lockbox:0.1.0 .
#   docker build --target plugin-digests --output type=local,dest=. .   # writes ./SHA256SUMS
#
# Multi-stage: build statically linked release binaries in the Rust image,
# then copy them onto distroless/static (no libc, no shell, CA certificates
# and /etc/passwd only) and run as the non-root user 65532. The Helm chart
# (charts/lockbox) relies on the paths below; tests/packaging checks that
# they agree, and that the workspace binaries link only against glibc (which
# +crt-static links in).
#
#   /usr/local/bin/lockbox          the server, operator and CLI
#   /usr/lib/lockbox/plugins/       the example plugins (lockbox-plugin-*),
#                                   Vault's kv (version 2) and Kubernetes auth
#                                   plugins (vault-plugin-*), plus an empty
#                                   extra/ for a plugin volume
#   /usr/lib/lockbox/sha256/NAME    each plugin's sha256 (64 hex digits, no
#                                   newline: for `lockbox write ... sha256=@FILE`)
#   /usr/lib/lockbox/SHA256SUMS     the same, in sha256sum format; `lockbox operator
#                                   run --kubernetes-auth` (the chart's default)
#                                   verifies the Kubernetes auth plugin against it
#                                   before registering it as auth/kubernetes
#   /var/lib/lockbox/               for the data (owned by 65532; mount a volume);
#                                   lockbox keeps it in data/ below

# Vault's own plugins, run unmodified by lockbox: kv version 2 and
# Kubernetes auth, built from their modules at the versions pinned in
# tests/go/upstream (go.mod + go.sum; -mod=readonly: go.sum is enforced),
# static (no cgo), reproducible paths (-trimpath).
FROM golang:1.26-bookworm AS vault-plugins
WORKDIR /src
COPY tests/go/upstream/ /src/
ENV CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
RUN set -eu; mkdir -p /out; \
    (cd secrets-kv && go build -ldflags "-s -w" -o /out/vault-plugin-secrets-kv \
      github.com/hashicorp/vault-plugin-secrets-kv/cmd/vault-plugin-secrets-kv); \
    (cd auth-kubernetes && go build -ldflags "-s -w" -o /out/vault-plugin-auth-kubernetes \
      github.com/hashicorp/vault-plugin-auth-kubernetes/cmd/vault-plugin-auth-kubernetes)

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=vault-plugins /out/ /vault-plugins/
# Static binaries (glibc, static-pie). --target makes RUSTFLAGS apply to the
# binaries only, not to build scripts and proc macros (which must stay
# dynamic); the target is the build machine's own, so this works on amd64
# and arm64 alike.
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN set -eu; \
    target="$(rustc -vV | sed -n 's/^host: //p')"; \
    cargo build --release --locked --target "$target" \
      -p lockbox -p lockbox-plugin-mock -p lockbox-plugin-passgen -p lockbox-plugin-userpass -p lockbox-plugin-database; \
    bin="target/$target/release"; \
    mkdir -p /out/bin /out/plugins/extra /out/sha256 /out/data; \
    cp "$bin/lockbox" /out/bin/; \
    for p in lockbox-plugin-mock lockbox-plugin-passgen lockbox-plugin-userpass lockbox-plugin-database; do \
      cp "$bin/$p" /out/plugins/; \
      printf '%s' "$(sha256sum "/out/plugins/$p" | cut -c1-64)" > "/out/sha256/$p"; \
    done; \
    for p in vault-plugin-secrets-kv vault-plugin-auth-kubernetes; do \
      cp "/vault-plugins/$p" /out/plugins/; \
      printf '%s' "$(sha256sum "/out/plugins/$p" | cut -c1-64)" > "/out/sha256/$p"; \
    done; \
    (cd /out/plugins && sha256sum lockbox-plugin-* vault-plugin-*) > /out/SHA256SUMS; \
    for f in /out/bin/lockbox /out/plugins/lockbox-plugin-* /out/plugins/vault-plugin-*; do \
      if readelf -d "$f" | grep -q '(NEEDED)'; then \
        echo "$f is dynamically linked; the final image has no libc" >&2; exit 1; \
      fi; \
    done; \
    /out/bin/lockbox --version

# `docker build --target plugin-digests --output type=local,dest=. .` writes
# SHA256SUMS next to you: the digests for the PluginCatalogEntry examples.
FROM scratch AS plugin-digests
COPY --from=build /out/SHA256SUMS /SHA256SUMS

# The image (the last stage is the default target).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/lockbox /usr/local/bin/lockbox
COPY --from=build /out/plugins/ /usr/lib/lockbox/plugins/
COPY --from=build /out/sha256/ /usr/lib/lockbox/sha256/
COPY --from=build /out/SHA256SUMS /usr/lib/lockbox/SHA256SUMS
COPY --from=build --chown=65532:65532 /out/data/ /var/lib/lockbox/
USER 65532:65532
EXPOSE 8200 8080
ENTRYPOINT ["/usr/local/bin/lockbox"]
CMD ["operator", "run", "--data-dir=/var/lib/lockbox/data", "--plugin-directory=/usr/lib/lockbox/plugins", "--api-address=0.0.0.0:8200", "--health-address=0.0.0.0:8080"]
