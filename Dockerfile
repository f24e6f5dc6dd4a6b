# lockbox image: the lockbox binary plus the example plugins.
# Multi-stage: build in the Rust image, run on distroless (glibc, no shell),
# as the non-root user 65532. Packaging work (issue 6) refines this.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
      -p lockbox -p lockbox-plugin-mock -p lockbox-plugin-passgen -p lockbox-plugin-userpass \
 && mkdir -p /out/plugins \
 && cp target/release/lockbox /out/ \
 && cp target/release/lockbox-plugin-mock target/release/lockbox-plugin-passgen \
       target/release/lockbox-plugin-userpass /out/plugins/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/lockbox /usr/local/bin/lockbox
COPY --from=build /out/plugins/ /usr/lib/lockbox/plugins/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/lockbox"]
CMD ["operator", "run", "--data-dir", "/var/lib/lockbox", "--plugin-directory", "/usr/lib/lockbox/plugins", "--api-address", "0.0.0.0:8200", "--health-address", "0.0.0.0:8080"]
