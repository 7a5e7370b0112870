# Approach "dockerfile+cache": the FINAL Dockerfile of the Valkyrie blog post
# ("Speeding Up Docker Builds At Valkyrie", 2025-05-22): one RUN under a /nix
# cache mount seeded from the builder image. Adapted to the benchmark workload;
# the build context is the workload directory.
# Deviations, each forced by this setup:
#  - local/nix:test instead of nixos/nix:2.24.0 (image and cache-mount source):
#    no registry.
#  - No COPY flake.lock: the workload flake has no inputs, so nix writes no lock file.
#  - The sources are flake.nix and src/ (the blog copies cmd/, internal/, go.mod ...).
#  - Final stage FROM scratch, not ubuntu:24.04 + apt-get + adduser + a sqlite
#    file (no registry; the comparison is about the Nix part), hence no USER,
#    WORKDIR or chown.
FROM local/nix:test AS builder

WORKDIR /workload
COPY flake.nix /workload
COPY src /workload/src

RUN \
    --mount=type=cache,target=/nix,from=local/nix:test,source=/nix \
    mkdir -p /tmp/nix-store-closure  && \
    nix \
    --extra-experimental-features "nix-command flakes" \
    --option filter-syscalls false \
    --show-trace \
    --log-format raw \
    build --out-link /tmp/workload/result && \
    cp -R $(nix-store -qR /tmp/workload/result) /tmp/nix-store-closure

FROM scratch

COPY --from=builder /tmp/nix-store-closure /nix/store
COPY --from=builder /tmp/workload/ /home/app

ENTRYPOINT ["/home/app/result/bin/app"]
