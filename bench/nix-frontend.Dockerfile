# syntax=local/nix-frontend:dev
# Approach "nix-frontend": the whole spec. The entrypoint is the flake's
# meta.mainProgram; the build context is the workload directory.
flake = ".#default"
builder = "local/nix:test"
