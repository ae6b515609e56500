# A stand-in for nixpkgs' package set, used with the REAL nixpkgs `lib` and the REAL uv2nix,
# pyproject.nix and build-system-pkgs trees (nix/check-real-inputs.sh), so the flake's outputs
# evaluate to real .drv files offline. Only the builders are fake: every derivation here is a
# genuine `derivation` (so it has a drvPath and takes part in `nix flake check --no-build`) whose
# builder just fails if anyone ever tries to build it. What goes into a derivation's inputs
# (names, versions, wheel URLs and hashes, image config, nested derivations) is kept, so two
# evaluations can be compared by drvPath.
#
# If the flake or its inputs start using a package or builder that is missing here, evaluation
# fails with "attribute '<name>' missing": add it below.
{ lib, system }:
let
  # Values builtins.derivation accepts as environment; everything else (functions, attrsets
  # such as passthru or meta) is left out of the .drv, as nixpkgs does for passthru.
  envValue =
    v:
    builtins.isString v
    || builtins.isBool v
    || builtins.isInt v
    || builtins.isPath v
    || (builtins.isAttrs v && v ? outPath)
    || (builtins.isList v && builtins.all envValue v)
    || v == null;
  reserved = [
    "passthru"
    "meta"
    "name"
    "system"
    "builder"
    "args"
    "outputs"
    "__structuredAttrs"
    "env"
  ];
  toEnv =
    attrs:
    lib.mapAttrs (_: v: if v == null then "" else v) (
      lib.filterAttrs (n: v: !(builtins.elem n reserved) && envValue v) attrs
    );

  # A derivation that cannot be built: the builder names what it is and exits 1.
  fakeDerivation =
    attrs:
    let
      name = attrs.name or "${attrs.pname or "unnamed"}-${attrs.version or "0"}";
      env = toEnv attrs // (lib.optionalAttrs (attrs ? env && builtins.isAttrs attrs.env) (toEnv attrs.env));
      drv = derivation (
        env
        // {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            "echo 'keel nixpkgs stub: this derivation is evaluation-only and cannot be built' >&2; exit 1"
          ];
        }
      );
    in
    drv;

  # stdenv.mkDerivation with nixpkgs' calling conventions: an attrset or `finalAttrs: {...}`,
  # `overrideAttrs` with `old: {...}` or `final: prev: {...}`, passthru merged into the result.
  mkDerivation =
    fnOrAttrs:
    let
      toFn = x: if builtins.isFunction x then x else (_: x);
      make =
        f:
        let
          attrs = f final;
          drv = fakeDerivation attrs;
          final =
            attrs
            // (attrs.passthru or { })
            // {
              inherit (drv) drvPath outPath type;
              inherit drv;
              name = drv.name;
              out = final;
              outputs = attrs.outputs or [ "out" ];
              meta = attrs.meta or { };
              passthru = attrs.passthru or { };
              finalPackage = final;
              overrideAttrs =
                g:
                make (
                  self:
                  let
                    prev = f self;
                    gApplied = g prev;
                    delta = if builtins.isFunction gApplied then g self prev else gApplied;
                  in
                  prev
                  // delta
                  // {
                    passthru = (prev.passthru or { }) // (delta.passthru or { });
                  }
                );
            };
        in
        final;
    in
    make (toFn fnOrAttrs);

  hostPlatform = lib.systems.elaborate system;

  glibc = mkDerivation {
    pname = "glibc";
    version = "2.40";
  };

  stdenv = {
    inherit mkDerivation hostPlatform;
    buildPlatform = hostPlatform;
    targetPlatform = hostPlatform;
    isLinux = hostPlatform.isLinux;
    isDarwin = hostPlatform.isDarwin;
    # Wheel selection reads the glibc version (manylinux_2_X needs glibc >= 2.X); nixpkgs
    # unstable ships 2.40.
    cc = pkg "cc-wrapper" { passthru.libc = glibc; };
    shell = "/bin/sh";
  };

  pkg = name: extra: mkDerivation ({ inherit name; } // extra);

  runCommand =
    name: env: script:
    mkDerivation (env // { inherit name; buildCommand = script; });

  writeText = name: text: runCommand name { inherit text; } "";
  writeShellScript = name: text: runCommand name { inherit text; } "";

  makeSetupHook =
    attrs: script:
    mkDerivation {
      name = attrs.name or "hook";
      propagatedBuildInputs = attrs.propagatedBuildInputs or [ ];
      substitutions = builtins.toJSON (lib.mapAttrs (_: toString) (attrs.substitutions or { }));
      script = if builtins.isPath script then builtins.readFile script else toString script;
      passthru = attrs.passthru or { };
    };

  replaceVars =
    src: replacements:
    runCommand (baseNameOf (toString src)) {
      text = builtins.readFile src;
      replacements = builtins.toJSON (lib.mapAttrs (_: v: if v == null then "" else toString v) replacements);
    } "";

  # fetchurl keeps the URL and hash in the .drv (a wheel bump changes the drvPath).
  fetchurl =
    args:
    runCommand (args.name or (baseNameOf (builtins.head (args.urls or [ args.url ])))) {
      urls = args.urls or [ args.url ];
      hash = args.hash or args.sha256 or "";
    } "";

  # Full versions as nixpkgs has them (markers like python_full_version < "3.11.3" depend on the
  # patch level); the check script copies the file next to this one, the tests read it too.
  pythonVersions = builtins.fromJSON (builtins.readFile ./python-versions.json);

  mkPython =
    pythonVersion:
    let
      version = pythonVersions.${pythonVersion};
      self = pkg "python3-${version}" {
        passthru = {
          inherit version stdenv pythonVersion;
          pname = "python3";
          sourceVersion =
            let
              parts = lib.splitString "." version;
            in
            {
              major = builtins.elemAt parts 0;
              minor = builtins.elemAt parts 1;
              patch = builtins.elemAt parts 2;
              suffix = "";
            };
          sitePackages = "lib/python${pythonVersion}/site-packages";
          executable = "python${pythonVersion}";
          interpreter = "${self.outPath}/bin/python${pythonVersion}";
          implementation = "cpython";
          isPy3k = true;
          pythonOlder = v: lib.versionOlder version v;
          pythonAtLeast = v: lib.versionAtLeast version v;
          pythonOnBuildForHost = self;
          pythonForBuild = self;
          pkgs = { };
          withPackages = _: self;
        };
      };
    in
    self;

  dockerTools = {
    # Keeps the whole image config in the .drv: a changed label or env changes the drvPath.
    buildLayeredImage =
      args:
      runCommand "docker-image-${args.name}.tar.gz" {
        imageName = args.name;
        imageTag = args.tag or "latest";
        config = builtins.toJSON (args.config or { });
        created = args.created or "1970-01-01T00:00:01Z";
        contents = args.contents or [ ];
        extraCommands = args.extraCommands or "";
        fakeRootCommands = args.fakeRootCommands or "";
        maxLayers = args.maxLayers or 100;
        passthru = {
          imageArgs = args;
        };
      } "";
    caCertificates = pkg "ca-certificates" { };
    fakeNss = lib.makeOverridable (
      {
        extraPasswdLines ? [ ],
        extraGroupLines ? [ ],
      }:
      pkg "fake-nss" { inherit extraPasswdLines extraGroupLines; }
    ) { };
  };

  self = lib.makeScope lib.callPackageWith (final: {
    inherit
      lib
      stdenv
      system
      runCommand
      writeText
      writeShellScript
      makeSetupHook
      replaceVars
      fetchurl
      dockerTools
      ;
    stdenvNoCC = stdenv;
    pkgs = final;
    buildPackages = final;
    pkgsBuildBuild = final;
    pkgsBuildHost = final;
    mkShell =
      attrs:
      mkDerivation (
        (builtins.removeAttrs attrs [ "packages" ])
        // {
          name = attrs.name or "nix-shell";
          nativeBuildInputs = (attrs.nativeBuildInputs or [ ]) ++ (attrs.packages or [ ]);
        }
      );
    python311 = mkPython "3.11";
    python312 = mkPython "3.12";
    python313 = mkPython "3.13";
    python3 = final.python311;
    tzdata = pkg "tzdata-2025b" { };
    uv = pkg "uv" { };
    sops = pkg "sops" { };
    age = pkg "age" { };
    docker-compose = pkg "docker-compose" { };
    gnumake = pkg "gnumake" { };
    jq = pkg "jq" { };
    gnutar = pkg "gnutar" { };
    curl = pkg "curl" { };
    openssl = pkg "openssl" { };
    prometheus = pkg "prometheus" { };
    git = pkg "git" { };
    unzip = pkg "unzip" { };
    ugrep = pkg "ugrep" { meta.mainProgram = "ugrep"; };
    autoPatchelfHook = pkg "auto-patchelf-hook" { };
    # The libraries manylinux wheels may link against (what autoPatchelfHook is given).
    pythonManylinuxPackages =
      let
        libs = [ glibc (pkg "zlib" { }) (pkg "libgcc" { }) ];
      in
      {
        manylinux1 = libs;
        manylinux2010 = libs;
        manylinux2014 = libs;
      };
    nixfmt-rfc-style = pkg "nixfmt" { };
    cmake = pkg "cmake" { };
    # build-system-pkgs borrows setup hooks (and a few sources) from nixpkgs' Python packages.
    python3Packages = lib.genAttrs [
      "setuptools-scm"
      "cython"
      "meson-python"
      "poetry-dynamic-versioning"
      "pdm-backend"
      "cmake"
    ] (name: pkg "python3.11-${name}-nixpkgs" {
      passthru = {
        setupHook = pkg "${name}-setup-hook" { };
        setupHooks = [ (pkg "${name}-setup-hook" { }) ];
      };
    });
  });
in
self
