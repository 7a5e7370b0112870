{
  description = "nix-frontend benchmark workload: a sizeable build-only toolchain, two runtime libraries, busybox, an app";

  # Input-less: no nixpkgs, nothing to download. Raw derivations run
  # unsandboxed in the Nix builder image (its /bin/sh, coreutils, openssl, xz).
  #
  # Runtime closure of `default` (app): app, liba, libb, busybox (~8.3 MB).
  # `toolchain` (~42 MB, several seconds of CPU) is needed only to build app.
  # Each src/ file feeds exactly one derivation:
  #   src/app-message   -> app
  #   src/liba-version  -> liba (and so app)
  #   src/libb-version  -> libb (and so app)
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs
        (map (system: { name = system; value = f system; }) systems);
      packagesFor = system:
        let
          mk = name: script: extra: derivation ({
            inherit name system;
            builder = "/bin/sh";
            args = [ "-c" script ];
            PATH = "/usr/bin:/bin";
          } // extra);

          # Deterministic incompressible bytes: AES-CTR of zeros under a key
          # derived from a seed string. usage: noise SEED BYTES
          noise = ''
            noise() {
              head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt \
                -K "$(printf '%s' "$1" | sha256sum | cut -c1-32)" -iv 00000000000000000000000000000000
            }
          '';

          busybox = mk "busybox" ''
            set -e
            mkdir -p $out/bin
            cp /bin/busybox $out/bin/busybox
            ln -s busybox $out/bin/sh
          '' { };

          # A runtime library: its version file plus 3 MiB of "code" that
          # differs per version.
          lib = name: version: mk name ''
            set -e
            ${noise}
            mkdir -p $out/share $out/lib
            cp $version $out/share/version
            noise "${name} $(cat $version)" ${toString (3 * 1024 * 1024)} > $out/lib/${name}.so
          '' { inherit version; };
          liba = lib "liba" ./src/liba-version;
          libb = lib "libb" ./src/libb-version;

          # Build-only and sizeable: 16 "compilation units" of 2.5 MiB, each
          # compressed with xz (single-threaded, so deterministic): ~40 MB and
          # several seconds of CPU. Its output never reaches the image.
          toolchain = mk "toolchain" ''
            set -e
            ${noise}
            echo "toolchain: building"
            mkdir -p $out/bin $out/lib
            i=0
            while [ $i -lt 16 ]; do
              noise "toolchain unit $i" ${toString (2560 * 1024)} | xz -T1 -1 > $out/lib/unit$i.o.xz
              i=$((i+1))
            done
            cat > $out/bin/gen <<'GEN'
            #!/bin/sh
            # usage: gen BUSYBOX MESSAGE_FILE LIBA LIBB -> the app's launcher
            printf '#!%s/bin/sh\n' "$1"
            printf '%s/bin/busybox cat %s %s/share/version %s/share/version\n' "$1" "$2" "$3" "$4"
            GEN
            chmod +x $out/bin/gen
          '' { };

          app = mk "app" ''
            set -e
            mkdir -p $out/bin $out/share
            cp $msg $out/share/message
            $toolchain/bin/gen $busybox $out/share/message $liba $libb > $out/bin/app
            chmod +x $out/bin/app
          '' { inherit toolchain busybox liba libb; msg = ./src/app-message; }
          // { meta.mainProgram = "app"; };

          # For `run-on = "cross"` (bench/run.sh's "arm64 cross" row): the
          # app as a static aarch64 program that prints the same lines,
          # compiled on this system by the cross builder's gcc
          # (local/nix:test-cross); the toolchain is still built (natively)
          # first. Its closure has no busybox: the program needs no shell.
          app-cross = mk "app" ''
            set -e
            test -x $toolchain/bin/gen
            mkdir -p $out/bin $out/share
            cp $msg $out/share/message
            cat > app.c <<'EOF'
            #include <stdio.h>
            static int cat(const char *path) {
              char buf[4096];
              size_t n;
              FILE *f = fopen(path, "r");
              if (!f) return 1;
              while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
              return fclose(f) != 0;
            }
            int main(void) {
              int bad = cat(MESSAGE) | cat(LIBA "/share/version") | cat(LIBB "/share/version");
              return bad;
            }
            EOF
            aarch64-linux-gnu-gcc -static -O2 -o $out/bin/app app.c \
              -DMESSAGE="\"$out/share/message\"" -DLIBA="\"$liba\"" -DLIBB="\"$libb\""
          '' { inherit toolchain liba libb; msg = ./src/app-message; }
          // { meta.mainProgram = "app"; };

          # `flake = ".#app-${TARGETARCH}"`: each platform's app as this
          # system builds it; arm64 on x86_64 by the cross compiler.
          perArch =
            if system == "x86_64-linux"
            then { app-amd64 = app; app-arm64 = app-cross; }
            else { app-arm64 = app; };
        in
        { inherit busybox liba libb toolchain app; default = app; } // perArch;
    in
    {
      packages = forAllSystems packagesFor;
      # For the blog's `nix develop --command 'ls'` warm-up step (bench/*.Dockerfile):
      # a shell whose inputs are the toolchain. `nix develop` wants bash as builder.
      devShells = forAllSystems (system: {
        default = derivation {
          name = "workload-shell";
          inherit system;
          builder = "/bin/bash";
          args = [ "-c" "echo shell > $out" ];
          PATH = "/usr/bin:/bin";
          outputs = [ "out" ]; # get-env.sh writes to each of $outputs
          toolchain = (packagesFor system).toolchain;
        };
      });
    };
}
