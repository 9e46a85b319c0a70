# Registrator image: a Debian bookworm build stage makes the fully static release binary
# (tools/setup --build-only, then tools/build-static), and the runtime stage is FROM scratch
# holding only that binary, the CA bundle, /etc/nsswitch.conf and /etc/services.
#
#   docker build -t registrator .
#   docker run -d --name=registrator --net=host \
#     -v /var/run/docker.sock:/tmp/docker.sock registrator consul://localhost:8500
#
# Uses no BuildKit-only syntax (tested with the classic builder of Docker 20.10). The build stage
# needs apt: where the daemon's containers have no outbound network (a dockerd run with
# --iptables=false, as tools/image-test does), build with `docker build --network host`.

FROM debian:bookworm AS build

# The same pieces a developer machine runs: tools/setup --build-only installs only the packages
# the release build needs (not the test servers, clang or test libraries), enables deb-src,
# fetches Debian's source packages of libcurl, simdjson and cpp-httplib and builds the minimal
# static libcurl (tools/static-deps). Copied alone first so this slow layer is cached across
# source changes.
WORKDIR /src
COPY tools/setup tools/static-deps /src/tools/
RUN tools/setup --build-only && rm -rf /var/lib/apt/lists/*

COPY . .
# --batch: no Bazel server may outlive this step. --spawn_strategy=local: Bazel's linux-sandbox
# needs namespaces that an unprivileged build container does not get.
RUN tools/build-static --batch --rootfs /rootfs --spawn_strategy=local

FROM scratch
COPY --from=build /rootfs/ /
ENV DOCKER_HOST=unix:///tmp/docker.sock
ENTRYPOINT ["/bin/registrator"]
