# `nix flake check` on a real Nix host. What of this also runs offline (CI with Debian's nix-bin)
# is in nix/check-offline.sh; docs/nix.md has the table.
{
  pkgs,
  py,
  image,
  image-gpu,
  settings,
  src,
}:
let
  # The policy the offline checks assert, evaluated with the same stub (pure Nix, no build).
  policy = import ./tests/image-policy.nix { };

  # Every package in the runtime closure must be installed from a wheel, except the declared
  # sdist-only ones (built with the build systems from nix/config.json). Same walk as
  # pyproject.nix's resolveCyclic: keys are "name" or "name@extra".
  runtimeClosure =
    let
      passthruOf = name: py.pythonSet.${name}.passthru or { };
      keysOf =
        deps:
        concatMap (name: [ { key = name; } ] ++ map (extra: { key = "${name}@${extra}"; }) deps.${name}) (
          builtins.attrNames deps
        );
      closure = builtins.genericClosure {
        startSet = [ { key = "keel"; } ];
        operator =
          { key }:
          let
            m = builtins.match "(.+)@(.*)" key;
          in
          if m == null then
            keysOf ((passthruOf key).dependencies or { })
          else
            keysOf ((passthruOf (builtins.elemAt m 0)).optional-dependencies.${builtins.elemAt m 1} or { });
      };
    in
    builtins.filter (item: builtins.match ".+@.*" item.key == null) closure;
  notWheels = builtins.filter (
    item:
    item.key != "keel"
    && !(settings.sdistBuildSystems ? ${item.key})
    && (py.pythonSet.${item.key}.passthru.format or "wheel") != "wheel"
  ) runtimeClosure;

  # Inspect the real image tarball: the config Docker will use and the files in its layers.
  inspectImage =
    variant: img:
    pkgs.runCommand "keel-image-config-${variant}"
      {
        nativeBuildInputs = [
          pkgs.jq
          pkgs.gnutar
        ];
      }
      ''
        mkdir img
        tar -xzf ${img} -C img
        cfg="img/$(jq -r '.[0].Config' img/manifest.json)"
        check() { jq -e "$1" "$cfg" >/dev/null || { echo "image ${variant}: failed: $1" >&2; jq . "$cfg" >&2; exit 1; }; }
        check '.config.User == "10001:10001"'
        check '.config.Entrypoint | length == 1 and (.[0] | endswith("/bin/keel"))'
        check '.config.Cmd == ["serve"]'
        check '.config.WorkingDir == "/app" and (.config.Volumes | has("/var/log/keel"))'
        check '.config.ExposedPorts | has("8000/tcp")'
        check '.config.Healthcheck.Test[0] == "CMD" and .config.Healthcheck.Test[2:] == ["healthcheck", "api"]'
        check '.created == "1970-01-01T00:00:01Z"'
        check '[.config.Env[] | select(startswith("NVIDIA_VISIBLE_DEVICES="))] | length == ${
          if variant == "gpu" then "1" else "0"
        }'
        for layer in $(jq -r '.[0].Layers[]' img/manifest.json); do
          tar -tf "img/$layer"
        done | sed -e 's|^\./||' -e 's|^/||' | sort -u > files
        grep -qE '^tmp/?$' files || { echo "image ${variant}: no /tmp" >&2; exit 1; }
        grep -qE '^var/log/keel/?$' files || { echo "image ${variant}: no /var/log/keel" >&2; exit 1; }
        grep -qx 'etc/ssl/certs/ca-certificates.crt' files || { echo "image ${variant}: no CA bundle" >&2; exit 1; }
        if grep -E '^(usr/)?s?bin/(sh|bash|dash|ash|busybox|apt|apt-get|dpkg|nix|nix-env|pip|pip3)$' files; then
          echo "image ${variant}: a shell or package manager is reachable at the image root" >&2
          exit 1
        fi
        # A bash store path can still sit in the closure as a dependency of something (e.g.
        # CPython's python3-config script); it is not on PATH or at /bin. Listed for the record.
        mkdir $out
        cp "$cfg" $out/config.json
        grep -E '^nix/store/[^/]+-bash-[^/]+/?$' files > $out/bash-in-closure.txt || true
      '';

  # Evaluation fails (naming what is wrong) before anything is built; asserts live inside each
  # check so listing the checks stays cheap.
  orThrow = failures: what: if failures == [ ] then what else throw (concatStringsSep "; " failures);
  inherit (builtins) concatMap concatStringsSep toJSON;
in
{
  image-policy = orThrow (map (f: "image policy: ${f}") policy.failures) (
    pkgs.runCommand "keel-image-policy" { } ''
      echo '${toJSON policy.checked}' > $out
    ''
  );

  wheels-only =
    orThrow
      (map (
        item: "${item.key} is built from an sdist but not declared in nix/config.json sdistBuildSystems"
      ) notWheels)
      (
        pkgs.runCommand "keel-wheels-only" { } ''
          echo '${toJSON (map (item: item.key) runtimeClosure)}' > $out
        ''
      );

  image-config = inspectImage "cpu" image;
  image-gpu-config = inspectImage "gpu" image-gpu;

  # The venv's console script starts (imports resolve, wheels were patched correctly).
  venv-smoke = pkgs.runCommand "keel-venv-smoke" { } ''
    ${py.venv}/bin/keel --help > $out
  '';

  # The unit tests, in the dev venv, on the flake's source, with the external commands the suite
  # and the docs it runs call (nix/config.json unitTestTools: command -> nixpkgs attribute; tests/unit/nix/
  # test_nix_unit_test_tools.py keeps that list complete). Tests that need tools absent from the
  # build sandbox (nix-instantiate, docker) skip and say so.
  unit-tests =
    pkgs.runCommand "keel-unit-tests"
      {
        nativeBuildInputs = [
          py.devVenv
        ]
        ++ map (attr: pkgs.${attr}) (builtins.attrValues settings.unitTestTools);
      }
      ''
        cp -r ${src} source
        chmod -R u+w source
        cd source
        export HOME=$TMPDIR
        python -m pytest tests/unit -q -p no:cacheprovider
        touch $out
      '';
}
