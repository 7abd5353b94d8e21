# tda as a sidecar: the agent with every bundled plugin compiled in, one static binary, FROM scratch, running
# as the unprivileged user tda (10001). `make image` stages the build context in bin/image/
# (binaries, CA certificates of the build host, passwd/group) and builds it without any image
# registry. See docs/docker.md.
#
#   docker run -d --name tda \
#     -v /var/run/docker.sock:/var/run/docker.sock:ro --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v "$PWD/capture.hcl:/etc/tda/agent.hcl:ro" -v tda-data:/var/lib/tda \
#     tda:0.1.0
FROM scratch

# bin/image/rootfs holds, as `make image` staged it:
#   /opt/tda/bin/tda                                           static binary (CGO_ENABLED=0); it serves the
#                                                              bundled plugins itself (tda plugin-serve)
#   /opt/tda/bin/plugins/                                      empty: third-party plugins (tda-plugin-*) go here
#   /etc/tda/agent.hcl                                         default config: configs/capture.hcl
#   /etc/ssl/certs/ca-certificates.crt                         TLS roots for Slack, SMTP and AWS
#   /etc/passwd, /etc/group                                    the unprivileged user tda (10001)
#   /tmp (mode 1777)                                           plugins talk to the agent over unix sockets here
COPY rootfs/ /
# The working directory, where the config's relative paths land: ./data (checkpoints) and ./logs
# exist, owned by tda, so that volumes mounted there start out writable.
COPY --chown=10001:10001 home /var/lib/tda

ENV TDA_PLUGIN_DIR=/opt/tda/bin/plugins \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
WORKDIR /var/lib/tda
VOLUME ["/var/lib/tda"]
ENTRYPOINT ["/opt/tda/bin/tda"]
CMD ["run", "-config", "/etc/tda/agent.hcl"]
