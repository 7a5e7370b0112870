# The nix-frontend image: a static binary on scratch.
#
# From source, with a registry (Rust toolchain image):
#   docker build -f frontend.Dockerfile --target release -t ourorg/nix-frontend .
# Offline, from a binary built on this machine (scripts/build-frontend.sh):
#   docker build -f frontend.Dockerfile --target prebuilt -t local/nix-frontend:dev DIR_WITH_BINARY

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && cp target/x86_64-unknown-linux-gnu/release/nix-frontend /nix-frontend

FROM scratch AS release
COPY --from=build /nix-frontend /nix-frontend
# The frontend needs no network. It declares only the frontend caps it implements:
# subrequests (--call outline|targets|check); not inputs (git/remote contexts) or contexts.
LABEL moby.buildkit.frontend.network.none="true" \
      moby.buildkit.frontend.caps="moby.buildkit.frontend.subrequests"
ENTRYPOINT ["/nix-frontend"]

FROM scratch AS prebuilt
COPY nix-frontend /nix-frontend
LABEL moby.buildkit.frontend.network.none="true" \
      moby.buildkit.frontend.caps="moby.buildkit.frontend.subrequests"
ENTRYPOINT ["/nix-frontend"]
