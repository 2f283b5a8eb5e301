# syntax=docker/dockerfile:1
# signet: a static binary on distroless, running as non-root.
#   docker build -t signet .
#   docker run --rm -p 127.0.0.1:9000:9000 -v $PWD/signet.yaml:/etc/signet/config.yaml:ro signet
# Inside the container signet listens on all addresses (SIGNET_LISTEN below), so a
# published port reaches it; it then refuses to start unless the config has clients or
# allow_anonymous_network: true. Sidecars sharing a network namespace set
# SIGNET_LISTEN=127.0.0.1:9000 instead.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
# CI runs this same command (TestDockerfileBuild), so the image build is tested without Docker.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/signet ./cmd/signet

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/signet /signet
USER nonroot:nonroot
# A container's loopback is its own: listen where a published port (or a kubelet probe)
# arrives. These override the config's listen and admin_listen; --listen and
# --admin-listen override them.
ENV SIGNET_LISTEN=0.0.0.0:9000 SIGNET_ADMIN_LISTEN=0.0.0.0:9001
EXPOSE 9000 9001
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s CMD ["/signet", "healthcheck"]
ENTRYPOINT ["/signet"]
CMD ["serve", "--config", "/etc/signet/config.yaml"]
