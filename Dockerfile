# xks-proxy container image: built from Debian 12 packages only, runs as a non-root user.
#   docker build -t xks-proxy .                 # the proxy; mount config, TLS and secrets
#   docker build --target demo -t xks-proxy-demo .   # the embedded SoftHSM demo
# No secret is baked in: the configuration, certificates, PIN and SigV4 secrets are mounted.

FROM debian:12 AS build
WORKDIR /src
# The build stage installs exactly what scripts/install-deps installs.
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DXKS_WERROR=ON \
      -DXKS_BUILD_TESTS=OFF -DXKS_BUILD_BENCHMARKS=OFF \
 && cmake --build build --target xks-proxy

FROM debian:12 AS runtime
# Runtime libraries of build/bin/xks-proxy (tests/packaging/packaging_test.py keeps this list
# in step with what the binary links), and CA certificates.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libboost-json1.81.0 libfmt9 libnghttp2-14 libspdlog1.10 libssl3 \
      libtomlplusplus3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/xks-proxy --create-home xks-proxy
COPY --from=build /src/build/bin/xks-proxy /usr/bin/xks-proxy
USER 10001:10001
EXPOSE 8443 9090
ENTRYPOINT ["/usr/bin/xks-proxy"]
CMD ["serve", "--config", "/etc/xks-proxy/xks-proxy.toml"]

FROM runtime AS demo
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends softhsm2 openssl \
 && rm -rf /var/lib/apt/lists/*
USER 10001:10001
WORKDIR /var/lib/xks-proxy
CMD ["demo", "--state-dir", "/var/lib/xks-proxy/demo"]
