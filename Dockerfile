# Registrator image: a Debian bookworm build stage runs the release build (tools/build-static),
# and the runtime stage is FROM scratch holding only the binary, the shared libraries `ldd` lists,
# the loader, the CA bundle and /etc/nsswitch.conf (+ /etc/services).
#
#   docker build -t registrator .
#   docker run -d --name=registrator --net=host \
#     -v /var/run/docker.sock:/tmp/docker.sock registrator consul://localhost:8500
#
# Uses no BuildKit-only syntax (tested with the classic builder of Docker 20.10). The build stage
# needs apt: where the daemon's containers have no outbound network (a dockerd run with
# --iptables=false, as tools/image-test does), build with `docker build --network host`.

FROM debian:bookworm AS build

# Only what `bazel build //registrator:registrator` needs. tools/setup would also install the test
# servers, clang and the test libraries (docker.io, etcd, zookeeper with a second JDK's worth of
# jars, ...): several hundred MB more to download and unpack for nothing the binary uses.
# netbase provides /etc/services for the runtime image; ca-certificates the CA bundle.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      bazel-bootstrap g++ \
      libabsl-dev libcurl4-openssl-dev libsimdjson-dev libcpp-httplib-dev libzookeeper-mt-dev \
      ca-certificates netbase \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# --batch: no Bazel server may outlive this step. --spawn_strategy=local: Bazel's linux-sandbox
# needs namespaces that an unprivileged build container does not get.
RUN tools/build-static --batch --rootfs /rootfs --spawn_strategy=local

FROM scratch
COPY --from=build /rootfs/ /
ENV DOCKER_HOST=unix:///tmp/docker.sock
ENTRYPOINT ["/bin/registrator"]
