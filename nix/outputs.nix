# The flake's outputs as a function of its inputs. flake.nix only declares the inputs and calls
# this; nix/tests/ call it with stub inputs (nix/tests/stub.nix) to check the wiring offline.
#
# nixpkgs lib functions used here must exist in the stub's lib: genAttrs, mapAttrs,
# composeManyExtensions, optionals, optionalAttrs, replaceStrings, concatStringsSep.
{
  self,
  nixpkgs,
  pyproject-nix,
  uv2nix,
  pyproject-build-systems,
  ...
}:
let
  inherit (nixpkgs) lib;

  settings = builtins.fromJSON (builtins.readFile ./config.json);
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
  inherit (pyproject.project) version;

  # The commit the flake was built from; "dirty" for an uncommitted tree (nix build warns).
  revision = self.rev or self.dirtyRev or "dirty";
  source = settings.image.source or null;

  # Where the NVIDIA container toolkit mounts driver libraries on each architecture.
  gpuLibraryDirs = {
    x86_64-linux = [
      "/usr/lib64"
      "/usr/lib/x86_64-linux-gnu"
      "/usr/local/nvidia/lib64"
    ];
    aarch64-linux = [
      "/usr/lib64"
      "/usr/lib/aarch64-linux-gnu"
      "/usr/local/nvidia/lib64"
    ];
  };

  # The keel package is built from these files only, so a commit that touches docs, tests, CI or
  # deployment files leaves the venv (and the image layers made from it) unchanged:
  # nix/check-real-inputs.sh evaluates two such commits and compares. hatchling needs
  # pyproject.toml and README.md (the `readme` field); uv2nix reads uv.lock.
  packageRoot = toString ../.;
  relative = path: builtins.substring (builtins.stringLength packageRoot + 1) (-1) (toString path);
  packageSource = builtins.path {
    path = ../.;
    name = "keel-source";
    filter =
      path: _type:
      let
        rel = relative path;
      in
      builtins.elem rel [
        "pyproject.toml"
        "uv.lock"
        "README.md"
        "LICENSE"
        "src"
      ]
      || (builtins.match "src/keel(/.*)?" rel != null && builtins.match ".*/__pycache__(/.*)?" rel == null);
  };

  perSystem =
    system:
    let
      pkgs = nixpkgs.legacyPackages.${system};
      python = pkgs."python${lib.replaceStrings [ "." ] [ "" ] settings.python}";

      py = import ./python.nix {
        inherit
          lib
          pkgs
          pyproject-nix
          uv2nix
          pyproject-build-systems
          python
          ;
        inherit (settings) sdistBuildSystems;
        workspaceRoot = packageSource;
      };

      # KEEL_ROOT inside the image, as the Containerfile lays it out: configs/<env>/app.env and
      # the SOPS-encrypted secrets/<env>.yaml. Never a key or a decrypted file: only *.yaml
      # directly under secrets/ (the age key arrives at run time as a file).
      configs = builtins.path {
        path = ../configs;
        name = "keel-configs";
      };
      encryptedSecrets = builtins.path {
        path = ../secrets;
        name = "keel-secrets";
        filter =
          path: type:
          type == "regular"
          && builtins.match "[^/]+\\.ya?ml" (baseNameOf path) != null
          && builtins.match ".*(dec|plain|key).*" (baseNameOf path) == null;
      };
      appRoot = pkgs.runCommand "keel-app-root" { } (
        ''
          mkdir -p $out/app/secrets
          cp -r ${configs} $out/app/configs
        ''
        + (
          if builtins.pathExists ../secrets then
            "cp -r ${encryptedSecrets}/. $out/app/secrets/\n"
          else
            ""
        )
      );

      mkImage =
        gpu:
        import ./image.nix {
          inherit
            lib
            gpu
            version
            revision
            source
            appRoot
            ;
          inherit (pkgs) dockerTools tzdata;
          inherit (settings.image) name;
          tag = if gpu then settings.image.gpuTag else settings.image.tag;
          venv = py.venv;
          gpuLibraryDirs = lib.optionals gpu gpuLibraryDirs.${system};
        };

      image = mkImage false;
      image-gpu = mkImage true;

      mkApp = verb: description: {
        type = "app";
        program = "${pkgs.writeShellScript "keel-${verb}" ''exec ${py.venv}/bin/keel ${verb} "$@"''}";
        meta = { inherit description; };
      };
    in
    {
      packages = {
        default = py.venv;
        venv = py.venv;
        inherit image image-gpu;
      };

      apps = {
        serve = mkApp "serve" "Run the Keel API (Granian + Litestar)";
        worker = mkApp "worker" "Run a Keel Taskiq worker";
        migrate = mkApp "migrate" "Apply database migrations (advisory-locked)";
      };

      devShells.default = pkgs.mkShell {
        name = "keel-dev";
        packages = [
          python
          pkgs.uv
          pkgs.sops
          pkgs.age
          pkgs.docker-compose
          pkgs.gnumake
        ];
        env = {
          # uv uses the shell's interpreter and never downloads one (those do not run on NixOS).
          UV_PYTHON = python.interpreter;
          UV_PYTHON_DOWNLOADS = "never";
          UV_PYTHON_PREFERENCE = "only-system";
        };
        shellHook = ''
          unset PYTHONPATH
        '';
      };

      checks = import ./checks.nix {
        inherit
          pkgs
          py
          image
          image-gpu
          settings
          ;
        src = ../.;
      };

      formatter = pkgs.nixfmt-rfc-style;
    };

  bySystem = lib.genAttrs settings.systems perSystem;
  collect = attr: lib.mapAttrs (_: outputs: outputs.${attr}) bySystem;
in
{
  packages = collect "packages";
  apps = collect "apps";
  devShells = collect "devShells";
  checks = collect "checks";
  formatter = collect "formatter";
}
