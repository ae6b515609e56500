# checks.wheels-only, evaluated offline: a package set is faked from uv.lock (each package's
# passthru as uv2nix sets it: dependencies, optional-dependencies, format = "wheel" when the
# lock has wheels) and handed to nix/checks.nix. Markers are not evaluated (every platform's
# dependencies are walked), which only makes the check stricter.
#
#   nix-instantiate --eval --strict --json nix/tests/wheels-only.nix -A failures   # must be []
{ }:
let
  stub = import ./stub.nix;
  settings = builtins.fromJSON (builtins.readFile ../config.json);
  lock = builtins.fromTOML (builtins.readFile ../../uv.lock);

  spec =
    deps:
    builtins.listToAttrs (
      map (dep: {
        name = dep.name;
        value = dep.extra or [ ];
      }) deps
    );
  fakePackage = pkg: {
    name = pkg.name;
    value = {
      passthru = {
        dependencies = spec (pkg.dependencies or [ ]);
        optional-dependencies = builtins.mapAttrs (_: spec) (pkg.optional-dependencies or { });
      }
      // (
        if pkg.source ? registry then
          { format = if (pkg.wheels or [ ]) != [ ] then "wheel" else "pyproject"; }
        else
          { }
      );
    };
  };
  pythonSet = builtins.listToAttrs (map fakePackage lock.package);

  checksWith =
    sdistBuildSystems:
    import ../checks.nix {
      inherit (stub) pkgs;
      py = {
        inherit pythonSet;
      };
      image = stub.drv "image" { };
      image-gpu = stub.drv "image-gpu" { };
      settings = settings // {
        inherit sdistBuildSystems;
      };
      src = ../..;
    };

  declared = builtins.tryEval (checksWith settings.sdistBuildSystems).wheels-only.outPath;
  undeclared = builtins.tryEval (checksWith { }).wheels-only.outPath;
  closure = builtins.fromJSON (
    builtins.head (builtins.match "echo '(.*)' > \\$out\n" (checksWith settings.sdistBuildSystems).wheels-only.script)
  );
in
{
  inherit closure;
  failures =
    (if declared.success then [ ] else [ "wheels-only fails with the sdistBuildSystems of nix/config.json" ])
    ++ (
      if undeclared.success && settings.sdistBuildSystems != { } then
        [ "wheels-only passes although the sdist-only packages are not declared" ]
      else
        [ ]
    )
    ++ (if builtins.elem "uvloop" closure then [ ] else [ "closure misses granian[uvloop]'s uvloop" ])
    ++ (if builtins.elem "pytest" closure then [ "closure includes the dev group (pytest)" ] else [ ]);
}
