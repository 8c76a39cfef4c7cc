# ses-inventory container image.
#   docker build -t ses-inventory .
#   docker run -d --name ses-inventory -p 127.0.0.1:9638:9638 \
#     -v ses-inventory-state:/var/lib/ses-inventory \
#     -v "$PWD/config.toml:/etc/ses-inventory/config.toml:ro" \
#     -v "$PWD/secrets:/run/secrets:ro" \
#     -e SES_INVENTORY__TMF638__PASSWORD_FILE=/run/secrets/tmf638-password \
#     -e SES_INVENTORY__TMF639__PASSWORD_FILE=/run/secrets/tmf639-password \
#     -e SES_INVENTORY__API__TOKEN_FILE=/run/secrets/api-token \
#     ses-inventory
# See docs/operations.md, "Install".

# --- build: the same command CI runs (.ci/run) ---
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/ses-inventory /out/usr/local/bin/ses-inventory \
 && install -d -m 0755 /out/var/lib/ses-inventory /out/etc/ses-inventory

# --- runtime: glibc, libgcc, CA certificates (rustls-platform-verifier reads the system store),
# no shell, no package manager; runs as the distroless "nonroot" user (65532) ---
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/ses-inventory /usr/local/bin/ses-inventory
COPY --from=build --chown=65532:65532 /out/var/lib/ses-inventory /var/lib/ses-inventory
COPY --from=build /out/etc/ses-inventory /etc/ses-inventory
USER 65532:65532
# The configuration file is optional: /etc/ses-inventory/config.toml when mounted, then the
# environment (SES_INVENTORY__<SECTION>__<KEY>) on top. In a container the API must listen on
# all interfaces to be reachable, which the daemon allows only with a bearer token
# (SES_INVENTORY__API__TOKEN or __TOKEN_FILE) or SES_INVENTORY__API__ALLOW_UNAUTHENTICATED=true.
ENV SES_INVENTORY__API__LISTEN=0.0.0.0:9638 \
    SES_INVENTORY__STORE__PATH=/var/lib/ses-inventory/inventory.db \
    SES_INVENTORY__LOG__FORMAT=json
VOLUME ["/var/lib/ses-inventory"]
EXPOSE 9638
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/ses-inventory", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ses-inventory"]
CMD ["run"]
