{
  description = "nix-frontend example shaped like the Valkyrie blog's image: a server and an agent";

  # No nixpkgs (nothing can be downloaded here): raw derivations run by the
  # builder image's /bin/sh. Both programs print what a test can check: who
  # they run as, where, and the data file copied into the image.
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
          busybox = mk "busybox" ''
            set -e
            mkdir -p $out/bin
            cp /bin/busybox $out/bin/busybox
            ln -s busybox $out/bin/sh
          '' { };
          program = name: mk name ''
            set -e
            mkdir -p $out/bin
            sed "s#@busybox@#$busybox#g; s#@name@#${name}#g" $src > $out/bin/${name}
            chmod +x $out/bin/${name}
          '' { inherit busybox; src = ./cmd/main.sh; };
          valkyrie = program "valkyrie";
          agent = program "agent";
        in
        { inherit busybox valkyrie agent; default = valkyrie; };
    in
    {
      packages = forAllSystems packagesFor;
    };
}
