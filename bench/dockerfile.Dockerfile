# Approach "dockerfile": the FIRST Dockerfile of the Valkyrie blog post
# ("Speeding Up Docker Builds At Valkyrie", 2025-05-22), adapted to the
# benchmark workload; the build context is the workload directory.
# Deviations, each forced by this setup:
#  - FROM local/nix:test, not nixos/nix:2.24.0: no registry (nix 2.26, flakes
#    already enabled, no substituters; the blog's nix.conf line is kept).
#  - No COPY flake.lock: the workload flake has no inputs, so nix writes no lock file.
#  - The sources are flake.nix and src/ (the blog copies cmd/, internal/, go.mod ...).
#  - Final stage FROM scratch, not ubuntu:24.04 + apt-get + adduser (no registry,
#    and the comparison is about the Nix part), hence no USER/WORKDIR valnix.
#  - The blog's trailing comments on COPY lines are dropped (Docker would read
#    them as more source paths).
FROM local/nix:test AS builder

RUN mkdir -p /etc/nix && echo "experimental-features = nix-command flakes" >> /etc/nix/nix.conf

WORKDIR /workload
COPY flake.nix /workload
# The workload's devShells.default has the toolchain as input, as the blog's
# dev shell has its Go toolchain: this layer holds the built toolchain.
RUN nix develop --command 'ls' # cache packages to avoid downloading everytime you change the code

COPY src /workload/src

RUN nix build # Build the app using nix

RUN mkdir /tmp/nix-store-closure
RUN cp -R $(nix-store -qR result/) /tmp/nix-store-closure # copy the closure to a folder

FROM scratch

COPY --from=builder /tmp/nix-store-closure /nix/store
# `result` is a symlink: COPY copies what it points to (the app's store path).
COPY --from=builder /workload/result /home/app

ENTRYPOINT ["/home/app/bin/app"]
