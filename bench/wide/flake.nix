{
  description = "nix-frontend benchmark workload, wide: a runtime closure of a few hundred small store paths";

  # Input-less, no nixpkgs; raw derivations like bench/workload.
  #
  # Runtime closure of `default` (app): app, busybox, liba, libb and 300
  # small modules mod-000 .. mod-299 (1 KiB each), all referenced by app.
  # `toolchain` is build-only. The src/ files play the same roles as in
  # bench/workload, so bench/run.sh runs the same scenarios:
  #   src/app-message   -> app
  #   src/liba-version  -> liba (and so app)
  #   src/libb-version  -> libb (and so app)
  outputs = { self }:
    let
      n = 300;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs
        (map (system: { name = system; value = f system; }) systems);
      pad3 = i: let s = toString i; in
        if i < 10 then "00${s}" else if i < 100 then "0${s}" else s;
      packagesFor = system:
        let
          mk = name: script: extra: derivation ({
            inherit name system;
            builder = "/bin/sh";
            args = [ "-c" script ];
            PATH = "/usr/bin:/bin";
          } // extra);

          busybox = mk "busybox" ''
            set -e
            mkdir -p $out/bin
            cp /bin/busybox $out/bin/busybox
            ln -s busybox $out/bin/sh
          '' { };

          # A small runtime library: its version file plus 64 KiB of data.
          lib = name: version: mk name ''
            set -e
            mkdir -p $out/share
            cp $version $out/share/version
            head -c ${toString (64 * 1024)} /dev/zero | openssl enc -aes-128-ctr -nosalt \
              -K "$(printf '%s %s' ${name} "$(cat $version)" | sha256sum | cut -c1-32)" \
              -iv 00000000000000000000000000000000 > $out/share/data
          '' { inherit version; };
          liba = lib "liba" ./src/liba-version;
          libb = lib "libb" ./src/libb-version;

          # 300 small paths, 1 KiB each, written with shell builtins only
          # (a build per path costs little beyond nix's own overhead).
          mods = builtins.genList (i: mk "mod-${pad3 i}" ''
            mkdir -p $out/share
            j=0
            while [ $j -lt 32 ]; do printf 'module %03d line %02d ......\n' ${toString i} $j; j=$((j+1)); done > $out/share/mod
          '' { }) n;

          # Build-only: writes the app's launcher.
          toolchain = mk "toolchain" ''
            set -e
            echo "toolchain: building"
            mkdir -p $out/bin
            cat > $out/bin/gen <<'GEN'
            #!/bin/sh
            # usage: gen BUSYBOX MESSAGE_FILE LIBA LIBB MODULES_FILE -> the app's launcher
            printf '#!%s/bin/sh\n' "$1"
            printf '%s/bin/busybox cat %s %s/share/version %s/share/version\n' "$1" "$2" "$3" "$4"
            printf 'echo "$(%s/bin/busybox wc -l < %s) modules"\n' "$1" "$5"
            GEN
            chmod +x $out/bin/gen
          '' { };

          app = mk "app" ''
            set -e
            mkdir -p $out/bin $out/share
            cp $msg $out/share/message
            for m in $mods; do echo $m; done > $out/share/modules
            $toolchain/bin/gen $busybox $out/share/message $liba $libb $out/share/modules > $out/bin/app
            chmod +x $out/bin/app
          '' { inherit toolchain busybox liba libb mods; msg = ./src/app-message; }
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
            for m in $mods; do echo $m; done > $out/share/modules
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
            #ifdef MODULES
              int lines = 0, c;
              FILE *f = fopen(MODULES, "r");
              if (!f) return 1;
              while ((c = getc(f)) != EOF) lines += c == '\n';
              fclose(f);
              printf("%d modules\n", lines);
            #endif
              return bad;
            }
            EOF
            aarch64-linux-gnu-gcc -static -O2 -o $out/bin/app app.c \
              -DMESSAGE="\"$out/share/message\"" -DLIBA="\"$liba\"" -DLIBB="\"$libb\"" -DMODULES="\"$out/share/modules\""
          '' { inherit toolchain liba libb mods; msg = ./src/app-message; }
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
      # For the blog's `nix develop --command 'ls'` warm-up step (see bench/workload).
      devShells = forAllSystems (system: {
        default = derivation {
          name = "wide-shell";
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
