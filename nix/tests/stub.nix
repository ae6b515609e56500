# Stand-ins for nixpkgs and the flake inputs, so the image function and the flake's outputs can
# be evaluated offline with Debian's nix-bin (no nixpkgs, no network, Nix 2.8).
#
# Every stub is inert data: a "derivation" is an attrset with a fake store path, and
# `dockerTools.buildLayeredImage` returns its arguments so tests can inspect them. The `lib`
# here implements only the nixpkgs-lib functions that nix/*.nix use, with nixpkgs' semantics;
# if a nix/ file starts using another one, add it here (the offline check fails until then).
let
  fakeHash = "00000000000000000000000000000000";
  drv =
    name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/${fakeHash}-${name}";
    }
    // extra;

  lib = rec {
    optionals = cond: list: if cond then list else [ ];
    optionalAttrs = cond: attrs: if cond then attrs else { };
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    inherit (builtins)
      mapAttrs
      attrNames
      concatStringsSep
      replaceStrings
      ;
    # nixpkgs: composeExtensions f g = final: prev: let fApplied = f final prev; prev' = prev // fApplied; in fApplied // g final prev'
    composeExtensions =
      f: g: final: prev:
      let
        fApplied = f final prev;
        prev' = prev // fApplied;
      in
      fApplied // g final prev';
    composeManyExtensions = builtins.foldl' composeExtensions (final: prev: { });
  };

  # A fakeNss whose `.override` records the extra lines and renders /etc/passwd like nixpkgs.
  mkFakeNss =
    {
      extraPasswdLines ? [ ],
      extraGroupLines ? [ ],
    }:
    drv "fake-nss" {
      passwd = [ "root:x:0:0:root user:/var/empty:/bin/sh" ] ++ extraPasswdLines ++ [
        "nobody:x:65534:65534:nobody:/var/empty:/bin/sh"
      ];
      group = [ "root:x:0:" ] ++ extraGroupLines ++ [ "nobody:x:65534:" ];
      override = args: mkFakeNss args;
    };

  dockerTools = {
    buildLayeredImage = args: args // { _builder = "buildLayeredImage"; };
    caCertificates = drv "ca-certificates" { };
    fakeNss = mkFakeNss { };
  };

  mkPkgs =
    system:
    let
      mkPython =
        version:
        drv "python3-${version}.0" {
          interpreter = "/nix/store/${fakeHash}-python3-${version}.0/bin/python${version}";
          pythonVersion = version;
        };
    in
    {
      inherit system lib dockerTools;
      python311 = mkPython "3.11";
      python312 = mkPython "3.12";
      python313 = mkPython "3.13";
      tzdata = drv "tzdata-2025b" { };
      uv = drv "uv" { };
      sops = drv "sops" { };
      age = drv "age" { };
      docker-compose = drv "docker-compose" { };
      gnumake = drv "gnumake" { };
      jq = drv "jq" { };
      curl = drv "curl" { };
      openssl = drv "openssl" { };
      prometheus = drv "prometheus" { };
      git = drv "git" { };
      gnutar = drv "gnutar" { };
      nixfmt-rfc-style = drv "nixfmt" { };
      # callPackage is only used on pyproject-nix.build.packages, whose stub is a function.
      callPackage = f: args: f args;
      runCommand = name: env: script: drv name { inherit env script; };
      writeShellScript = name: text: drv name { inherit text; };
      mkShell = args: drv (args.name or "nix-shell") args;
    };

  # pyproject-nix.build.packages { python } -> a base set whose overrideScope applies overlays.
  mkPythonSet =
    python: overlay:
    let
      self = {
        inherit python;
        mkVirtualEnv = name: deps: drv name { inherit deps; };
        overrideScope = more: mkPythonSet python (lib.composeExtensions overlay more);
      }
      // overlay self { };
    in
    self;

  workspace = {
    mkPyprojectOverlay = args: final: prev: { _overlayArgs = args; };
    # As uv2nix computes them: `default` carries tool.uv.default-groups (pyproject.toml: dev).
    deps = {
      default = {
        keel = [ "dev" ];
      };
      all = {
        keel = [ "dev" ];
      };
    };
  };
in
{
  inherit lib dockerTools drv;
  pkgs = mkPkgs "x86_64-linux";

  # Inputs for `(import ../../flake.nix).outputs` / `import ../outputs.nix`.
  inputs = {
    self = {
      outPath = toString ../..;
      rev = "0123456789abcdef0123456789abcdef01234567";
    };
    nixpkgs = {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] mkPkgs;
    };
    pyproject-nix = {
      build.packages = { python }: mkPythonSet python (final: prev: { });
    };
    uv2nix = {
      lib.workspace.loadWorkspace = { workspaceRoot }: workspace;
    };
    pyproject-build-systems = {
      overlays = {
        default = final: prev: { };
        wheel = final: prev: { };
      };
    };
  };
}
