# flake.nix of the nixpkgs stand-in that nix/check-real-inputs.sh assembles in a temporary
# directory: this file, the real nixpkgs `lib/` (from nix-community/nixpkgs.lib) and
# nixpkgs-stub.nix as pkgs.nix. It replaces the `nixpkgs` input with --override-input, so the
# real uv2nix, pyproject.nix and build-system-pkgs evaluate against the real lib.
{
  description = "nixpkgs stand-in: the real nixpkgs lib with evaluation-only builders";
  outputs =
    { self }:
    let
      lib = import ./lib;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [
        "x86_64-linux"
        "aarch64-linux"
      ] (system: import ./pkgs.nix { inherit lib system; });
    };
}
