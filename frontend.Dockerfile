# The nix-frontend image: a static binary on scratch, for linux/amd64 and linux/arm64.
#
# From source, with a registry (Rust toolchain image; the compiler runs on the
# platform of the machine that builds, and cross-compiles: no emulation):
#   docker buildx build -f frontend.Dockerfile --target release \
#     --platform linux/amd64,linux/arm64 -t ourorg/nix-frontend --push .
# Offline, from binaries built on this machine (scripts/build-frontend.sh), a
# context holding amd64/nix-frontend and arm64/nix-frontend:
#   docker build -f frontend.Dockerfile --target prebuilt -t local/nix-frontend:dev DIR

# build compiles the static binary for TARGETARCH on the BUILDPLATFORM
FROM --platform=$BUILDPLATFORM rust:1-bookworm AS build
ARG TARGETARCH
# The build stage goes into the SBOM too: its Cargo.lock lists the crates in the binary.
ARG BUILDKIT_SBOM_SCAN_STAGE=true
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc
# The target's std and, when it is not the build machine's, its gcc and libc.
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; gcc=gcc-x86-64-linux-gnu ;; \
      arm64) triple=aarch64-unknown-linux-gnu; gcc=gcc-aarch64-linux-gnu ;; \
      *) echo "unsupported platform: linux/$TARGETARCH (linux/amd64, linux/arm64)" >&2; exit 1 ;; \
    esac; \
    rustup target add "$triple"; \
    if [ "$(dpkg --print-architecture)" != "$TARGETARCH" ]; then \
      apt-get update -q && apt-get install -y -q --no-install-recommends "$gcc" "libc6-dev-$TARGETARCH-cross"; \
    fi; \
    echo "$triple" >/triple
WORKDIR /src
COPY . .
# crt-static only for the target, not for build scripts: hence --target.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    triple=$(cat /triple) \
 && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$triple" \
 && cp "target/$triple/release/nix-frontend" /nix-frontend

# release is the frontend image from source, for each target platform
FROM scratch AS release
COPY --from=build /nix-frontend /nix-frontend
# The frontend needs no network. It declares the frontend caps it implements:
# subrequests (--call outline|targets|check), contexts (--build-context),
# gitquerystring (git URLs with ?ref=&subdir=) and inputs (contexts the client
# built, e.g. bake's target:).
LABEL moby.buildkit.frontend.network.none="true" \
      moby.buildkit.frontend.caps="moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts,moby.buildkit.frontend.gitquerystring,moby.buildkit.frontend.inputs"
ENTRYPOINT ["/nix-frontend"]

# prebuilt is the frontend image from binaries built beforehand (CONTEXT/TARGETARCH/nix-frontend)
FROM scratch AS prebuilt
ARG TARGETARCH
COPY ${TARGETARCH}/nix-frontend /nix-frontend
LABEL moby.buildkit.frontend.network.none="true" \
      moby.buildkit.frontend.caps="moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts,moby.buildkit.frontend.gitquerystring,moby.buildkit.frontend.inputs"
ENTRYPOINT ["/nix-frontend"]
