# The Python package set and virtualenvs from uv.lock (uv2nix), preferring wheels.
{
  lib,
  pkgs,
  pyproject-nix,
  uv2nix,
  pyproject-build-systems,
  python,
  workspaceRoot,
  sdistBuildSystems,
}:
let
  workspace = uv2nix.lib.workspace.loadWorkspace { inherit workspaceRoot; };

  # Wheels wherever uv.lock has one for this platform; sdists only for the packages that publish
  # nothing else (see overrides.nix).
  lockOverlay = workspace.mkPyprojectOverlay { sourcePreference = "wheel"; };

  # Older build-system-pkgs revisions only have `default`; newer ones split wheel/sdist.
  buildSystemsOverlay =
    pyproject-build-systems.overlays.wheel or pyproject-build-systems.overlays.default;

  # Order matters: build systems, then the locked packages, then our fixes on top.
  pythonSet = (pkgs.callPackage pyproject-nix.build.packages { inherit python; }).overrideScope (
    lib.composeManyExtensions [
      buildSystemsOverlay
      lockOverlay
      (import ./overrides.nix { inherit lib sdistBuildSystems; })
    ]
  );
in
{
  inherit workspace pythonSet python;
  # Runtime dependencies only: what the image ships. Not `workspace.deps.default`: uv2nix puts
  # the members' `tool.uv.default-groups` there, and pyproject.toml makes "dev" a default group.
  venv = pythonSet.mkVirtualEnv "keel-env" (lib.mapAttrs (_member: _groups: [ ]) workspace.deps.default);
  # Runtime + dev group: what the unit-test check runs in.
  devVenv = pythonSet.mkVirtualEnv "keel-dev-env" workspace.deps.all;
}
