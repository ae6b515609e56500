{
  description = "Keel: reproducible venv and OCI images (API, worker, migrations) from uv.lock";

  # flake.lock pins every input; `follows` makes all of them share one nixpkgs and one
  # pyproject.nix. Update with `nix flake update` (see docs/nix.md).
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  # packages.<system>.{default, venv, image, image-gpu}, apps.<system>.{serve, worker, migrate},
  # devShells.<system>.default, checks.<system>, formatter.<system>; see nix/outputs.nix.
  outputs = inputs: import ./nix/outputs.nix inputs;
}
