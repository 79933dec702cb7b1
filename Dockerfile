# phpsessd: the daemon as a small, non-root container.
#
#   docker build -t phpsessd .
#   docker run -d --name phpsessd -v phpsessd-run:/run/phpsessd -v phpsessd-data:/var/lib/phpsessd phpsessd
#
# By default it listens on the unix socket /run/phpsessd/phpsessd.sock (share
# the /run/phpsessd volume with the php-fpm container) and keeps sessions as
# PHP-compatible sess_<id> files in /var/lib/phpsessd. For a shared pool
# over TCP, give it a token (TCP without one is refused); PHP then sets
# phpsessd.address = "tcp://<host>:7480" and phpsessd.token (or the
# PHPSESSD_ADDRESS / PHPSESSD_TOKEN FastCGI params):
#
#   docker run -d -p 7480:7480 -v /etc/phpsessd.token:/run/secrets/phpsessd_token:ro phpsessd \
#       --listen tcp://0.0.0.0:7480 --token-file /run/secrets/phpsessd_token \
#       --store redis://redis:6379/0
#
# Every flag also reads from a PHPSESSD_* variable (`phpsessd serve --help`).
#
# The unix socket is created mode 0660: run the container with the group
# of the php-fpm workers (www-data is gid 33 in the official Debian-based
# php images, 82 in the Alpine ones), e.g. `--user 65532:33`.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Module downloads are cached in their own layer: source edits don't refetch.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
# CGO off: a static binary that runs on distroless/static with no libc.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
        -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/usr/local/bin/phpsessd ./cmd/phpsessd \
    && /out/usr/local/bin/phpsessd version \
    && mkdir -p /out/run/phpsessd /out/var/lib/phpsessd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr/local/bin/phpsessd /usr/local/bin/phpsessd
# Owned by the nonroot user so the daemon can create its socket and store
# files; a fresh named volume inherits this ownership.
COPY --from=build --chown=65532:65532 /out/run/phpsessd /run/phpsessd
COPY --from=build --chown=65532:65532 /out/var/lib/phpsessd /var/lib/phpsessd
USER 65532:65532
VOLUME ["/run/phpsessd", "/var/lib/phpsessd"]
EXPOSE 7480
# SIGTERM (docker stop) makes phpsessd finish in-flight requests and exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/phpsessd", "serve"]
CMD ["--listen", "unix:///run/phpsessd/phpsessd.sock", "--store", "files:///var/lib/phpsessd"]
