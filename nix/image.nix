# The Keel OCI image, written as a plain function of its inputs.
#
# The flake calls it with the real `dockerTools`, `lib` and the uv2nix venv; the offline checks
# (nix/tests/image-policy.nix, tests/unit/nix/) call it with nix/tests/stub.nix, whose
# `buildLayeredImage` returns its arguments, so the policy below is checked without nixpkgs.
# Only `lib.optionals` and `lib.optionalAttrs` are used from lib (the stub provides those).
#
# Contract shared with the Containerfile: numeric user 10001, entrypoint `keel`, default verb
# `serve`, port 8000, healthcheck `keel healthcheck api`, writes only to /tmp and the log volume /var/log/keel.
{
  lib,
  dockerTools,
  # The runtime virtualenv (uv2nix `mkVirtualEnv`, no dev group); provides bin/keel.
  venv,
  # Store path holding app/configs (per-env app.env) and app/secrets (SOPS-encrypted per-env
  # files, never keys); KEEL_ROOT points at /app, as in the Containerfile.
  appRoot,
  tzdata,
  name,
  tag,
  version,
  # Flake revision ("dirty" for an uncommitted tree): the OCI revision label.
  revision,
  source ? null,
  gpu ? false,
  # GPU variant: where the NVIDIA container toolkit mounts the driver libraries (libcuda,
  # libnvidia-ml). Nix's glibc ignores /etc/ld.so.cache, so they must be on LD_LIBRARY_PATH.
  gpuLibraryDirs ? [ ],
  uid ? 10001,
  gid ? 10001,
  user ? "keel",
  port ? 8000,
}:
let
  home = "/home/${user}";
  ids = "${toString uid}:${toString gid}";
  keel = "${venv}/bin/keel";
  seconds = s: s * 1000000000; # OCI/Docker healthcheck durations are nanoseconds

  # /etc/passwd, /etc/group, /etc/nsswitch.conf with root, nobody and the app user. The login
  # shell names a path that does not exist: there is no shell in the image.
  nss = dockerTools.fakeNss.override {
    extraPasswdLines = [ "${user}:x:${ids}:Keel service:${home}:/sbin/nologin" ];
    extraGroupLines = [ "${user}:x:${toString gid}:" ];
  };

  zoneinfo = "${tzdata}/share/zoneinfo";
  logDir = "/var/log/keel";
  created = "1970-01-01T00:00:01Z";

  baseEnv = [
    # Only the venv: no /bin, no shell, no package manager on PATH.
    "PATH=${venv}/bin"
    "HOME=${home}"
    "KEEL_ROOT=/app"
    "HTTP_HOST=0.0.0.0"
    "HTTP_PORT=${toString port}"
    "LANG=C.UTF-8"
    "TMPDIR=/tmp"
    # dockerTools.caCertificates links the bundle under the Debian name too (as the Containerfile).
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    "TZDIR=${zoneinfo}"
    "PYTHONTZPATH=${zoneinfo}"
    "PYTHONUNBUFFERED=1"
    # The store is read-only and the venv is already byte-compiled.
    "PYTHONDONTWRITEBYTECODE=1"
    # The commit, for the keel_build_info metric (the revision label's value).
    "KEEL_REVISION=${revision}"
  ];

  gpuEnv = [
    "NVIDIA_VISIBLE_DEVICES=all"
    "NVIDIA_DRIVER_CAPABILITIES=compute,utility"
    "LD_LIBRARY_PATH=${builtins.concatStringsSep ":" gpuLibraryDirs}"
  ];
in
assert gpu -> gpuLibraryDirs != [ ];
dockerTools.buildLayeredImage {
  inherit name tag;

  # The dockerTools default, stated so nobody "fixes" it to "now". What is reproducible: the same
  # flake.lock, uv.lock, keel package source (outputs.nix `packageSource`: pyproject.toml,
  # README.md, src/keel) and configs/ + encrypted secrets/ give the same layers. The digest also
  # covers the config, whose revision label names the commit, so it changes with every commit;
  # nix/check-real-inputs.sh evaluates two commits that differ outside the package and checks
  # that nothing but that label differs.
  inherit created;

  # One layer per store path, most depended-on first: Python and the wheels land in layers of
  # their own that change only with uv.lock and are shared between the CPU and GPU images.
  maxLayers = 100;

  # Only what must appear at the image root. The venv and tzdata come in through the config's
  # store references; nothing here provides a shell or a package manager.
  contents = [
    dockerTools.caCertificates
    nss
    appRoot
  ];

  # Runs in the image root before it is packed (mode bits survive, ownership does not).
  extraCommands = ''
    mkdir -p tmp .${home} .${logDir}
    chmod 1777 tmp
  '';

  # Ownership needs fakeroot; no fakechroot (it breaks chown) and no shadowSetup.
  fakeRootCommands = ''
    chown ${ids} .${home} .${logDir}
    chmod 0750 .${home}
  '';

  config = {
    User = ids;
    Entrypoint = [ keel ];
    Cmd = [ "serve" ];
    WorkingDir = "/app";
    Env = baseEnv ++ lib.optionals gpu gpuEnv;
    ExposedPorts = {
      "${toString port}/tcp" = { };
    };
    # Log files (LOG_FILE) go to a volume; a fresh named volume inherits the 10001 ownership.
    Volumes = {
      "${logDir}" = { };
    };
    # The app's own health client: no curl, no shell (exec form).
    Healthcheck = {
      Test = [
        "CMD"
        keel
        "healthcheck"
        "api"
      ];
      Interval = seconds 10;
      Timeout = seconds 5;
      StartPeriod = seconds 30;
      Retries = 3;
    };
    Labels = {
      "org.opencontainers.image.title" = if gpu then "keel-gpu" else "keel";
      "org.opencontainers.image.description" =
        "Keel: Litestar API, Taskiq worker and migrations in one image"
        + (if gpu then " (NVIDIA GPU variant)" else "");
      "org.opencontainers.image.version" = version;
      "org.opencontainers.image.revision" = revision;
      "org.opencontainers.image.created" = created;
      "org.opencontainers.image.licenses" = "Apache-2.0";
      "org.opencontainers.image.ref.name" = "${name}:${tag}";
      # Lets tooling (containers/build.sh, compose.sh) tell a Nix-built keel:latest from one it
      # built from the Containerfile, and leave it alone.
      "org.keel.builder" = "nix";
    }
    // lib.optionalAttrs (source != null) { "org.opencontainers.image.source" = source; };
  };
}
