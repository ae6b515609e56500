# The flake's output shape, evaluated offline: flake.nix's `outputs` is called with stub inputs.
#
#   nix-instantiate --eval --strict --json nix/tests/flake-outputs.nix -A failures   # must be []
{ }:
let
  stub = import ./stub.nix;
  flake = import ../../flake.nix;
  outputs = flake.outputs stub.inputs;
  settings = builtins.fromJSON (builtins.readFile ../config.json);

  inherit (builtins)
    all
    attrNames
    concatMap
    filter
    match
    ;
  sorted = builtins.sort builtins.lessThan;

  perSystem =
    system:
    let
      packages = outputs.packages.${system};
      apps = outputs.apps.${system};
      shell = outputs.devShells.${system}.default;
      python = stub.inputs.nixpkgs.legacyPackages.${system}."python${
        builtins.replaceStrings [ "." ] [ "" ] settings.python
      }";
      rules = [
        {
          ok = attrNames packages == sorted [
            "default"
            "venv"
            "image"
            "image-gpu"
          ];
          msg = "packages are default, venv, image, image-gpu";
        }
        {
          ok = packages.default == packages.venv && packages.venv.name == "keel-env";
          msg = "default package is the runtime venv keel-env";
        }
        {
          ok = packages.venv.deps == { keel = [ ]; };
          msg = "the image venv installs keel with no dependency group (uv2nix deps.default carries default-groups = dev)";
        }
        {
          ok = attrNames apps == sorted [
            "serve"
            "worker"
            "migrate"
          ];
          msg = "apps are serve, worker, migrate";
        }
        {
          ok = all (
            verb: apps.${verb}.type == "app" && match "/nix/store/.*-keel-${verb}" apps.${verb}.program != null
          ) (attrNames apps);
          msg = "each app is a `keel-<verb>` program";
        }
        {
          ok =
            shell.env.UV_PYTHON == python.interpreter
            && shell.env.UV_PYTHON_DOWNLOADS == "never"
            && match ".*unset PYTHONPATH.*" shell.shellHook != null;
          msg = "dev shell pins UV_PYTHON to its Python, never downloads one, unsets PYTHONPATH";
        }
        {
          ok = all (name: builtins.elem name (map (p: p.name) shell.packages)) [
            python.name
            "uv"
            "sops"
            "age"
            "docker-compose"
          ];
          msg = "dev shell has the Python, uv, sops, age, docker-compose";
        }
        {
          ok = attrNames outputs.checks.${system} == sorted [
            "image-policy"
            "wheels-only"
            "image-config"
            "image-gpu-config"
            "venv-smoke"
            "unit-tests"
          ];
          msg = "checks: image-policy, wheels-only, image-config, image-gpu-config, venv-smoke, unit-tests";
        }
        {
          ok = outputs.formatter.${system}.name == "nixfmt";
          msg = "formatter is nixfmt (RFC style)";
        }
      ];
    in
    map (r: "${system}: ${r.msg}") (filter (r: !r.ok) rules);

  topLevel = [
    {
      ok = all (attr: attrNames outputs.${attr} == sorted settings.systems) [
        "packages"
        "apps"
        "devShells"
        "checks"
        "formatter"
      ];
      msg = "every output covers exactly the systems in nix/config.json";
    }
    {
      ok = sorted settings.systems == sorted [
        "x86_64-linux"
        "aarch64-linux"
      ];
      msg = "systems are x86_64-linux and aarch64-linux";
    }
  ];
in
{
  failures =
    map (r: r.msg) (filter (r: !r.ok) topLevel) ++ concatMap perSystem settings.systems;
}
