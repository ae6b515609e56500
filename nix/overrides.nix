# Fixes on top of the uv2nix overlay.
#
# Wheels need none: uv2nix installs them with autoPatchelf and the manylinux libraries. Packages
# that publish only an sdist are built from source and need their PEP 517 build systems, which
# uv.lock does not record. They are listed in nix/config.json ("sdistBuildSystems"), the same list
# tests/unit/nix/test_nix_wheels.py checks uv.lock against, so a new sdist-only dependency fails
# the unit tests here instead of the Nix build on someone's host.
{ lib, sdistBuildSystems }:
final: prev:
lib.mapAttrs (
  name: buildSystems:
  prev.${name}.overrideAttrs (old: {
    nativeBuildInputs =
      (old.nativeBuildInputs or [ ])
      ++ final.resolveBuildSystem (lib.genAttrs buildSystems (_: [ ]));
  })
) sdistBuildSystems
