{
  description = "nix-frontend example: an input-less flake (no nixpkgs, nothing to download)";

  # Runtime closure of `default` (hello): hello, greeting, busybox.
  # `toolchain` is needed only to build hello and must not be in that closure.
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs
        (map (system: { name = system; value = f system; }) systems);

      packagesFor = system:
        let
          # A raw derivation. Builds run unsandboxed in the Nix builder image,
          # so its /bin/sh, coreutils and /bin/busybox are usable.
          mk = name: script: extra: derivation ({
            inherit name system;
            builder = "/bin/sh";
            args = [ "-c" script ];
            PATH = "/usr/bin:/bin";
          } // extra);

          # Gives images a shell: a static busybox with sh -> busybox.
          busybox = mk "busybox" ''
            set -e
            mkdir -p $out/bin
            cp /bin/busybox $out/bin/busybox
            ln -s busybox $out/bin/sh
          '' { };

          # Runtime data. Only src/greeting.txt is an input (copied to the
          # store on its own), so editing it rebuilds greeting and hello only.
          greeting = mk "greeting" ''
            set -e
            mkdir -p $out/share
            cp $src $out/share/greeting.txt
          '' { src = ./src/greeting.txt; };

          # Build-only: a generator for hello's launcher. Its marker line shows
          # in build logs whenever it is (re)built. No flake file is an input.
          toolchain = mk "toolchain" ''
            set -e
            echo "toolchain: building"
            mkdir -p $out/bin
            cat > $out/bin/gen-launcher <<'GEN'
            #!/bin/sh
            # usage: gen-launcher BUSYBOX_DIR FILE -> script printing FILE
            printf '#!%s/bin/sh\nexec %s/bin/busybox cat %s\n' "$1" "$1" "$2"
            GEN
            chmod +x $out/bin/gen-launcher
          '' { };

          # The app. It refers to busybox and greeting, never to toolchain
          # (the generated script contains only the paths passed to it).
          hello = mk "hello" ''
            set -e
            mkdir -p $out/bin
            $toolchain/bin/gen-launcher $busybox $greeting/share/greeting.txt > $out/bin/hello
            chmod +x $out/bin/hello
          '' { inherit toolchain busybox greeting; }
          // { meta.mainProgram = "hello"; };
        in
        { inherit busybox greeting toolchain hello; default = hello; };
    in
    {
      packages = forAllSystems packagesFor;
    };
}
