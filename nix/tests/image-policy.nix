# The image policy, evaluated offline: nix/outputs.nix is called with stub inputs, so the images
# are exactly the arguments the flake passes to dockerTools.buildLayeredImage on a real host.
#
#   nix-instantiate --eval --strict --json nix/tests/image-policy.nix -A failures   # must be []
#   nix-instantiate --eval --strict --json nix/tests/image-policy.nix -A images     # for tests
{ }:
let
  stub = import ./stub.nix;
  outputs = import ../outputs.nix stub.inputs;
  settings = builtins.fromJSON (builtins.readFile ../config.json);
  version = (builtins.fromTOML (builtins.readFile ../../pyproject.toml)).project.version;

  inherit (builtins)
    all
    any
    attrNames
    elem
    filter
    head
    length
    match
    concatMap
    ;

  startsWith = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  endsWith =
    suffix: s:
    let
      n = builtins.stringLength s;
      k = builtins.stringLength suffix;
    in
    k <= n && builtins.substring (n - k) k s == suffix;
  envValue =
    env: key:
    let
      hits = filter (startsWith "${key}=") env;
    in
    if hits == [ ] then null else builtins.substring (builtins.stringLength key + 1) (-1) (head hits);

  # Contents must not provide a shell, coreutils-style tools or a package manager.
  forbidden = "(bash|dash|zsh|busybox|coreutils|toybox|nix|apt|dpkg|pip|binSh|bin-sh|usr-bin-env).*";

  checkImage =
    system: variant: args:
    let
      gpu = variant == "gpu";
      config = args.config;
      env = config.Env;
      venvBin = "${outputs.packages.${system}.venv}/bin";
      keel = "${venvBin}/keel";
      nss = head (filter (c: c.name == "fake-nss") args.contents);
      appUser = filter (l: startsWith "keel:" l) nss.passwd;
      rules = [
        {
          ok = args._builder == "buildLayeredImage";
          msg = "built with dockerTools.buildLayeredImage";
        }
        {
          ok = args.name == settings.image.name;
          msg = "image name is ${settings.image.name} (nix/config.json)";
        }
        {
          ok = args.tag == (if gpu then settings.image.gpuTag else settings.image.tag);
          msg = "image tag comes from nix/config.json";
        }
        {
          ok = config.User == "10001:10001";
          msg = "runs as numeric uid:gid 10001:10001";
        }
        {
          ok = appUser == [ "keel:x:10001:10001:Keel service:/home/keel:/sbin/nologin" ];
          msg = "/etc/passwd has the keel user (10001, home /home/keel, no login shell)";
        }
        {
          ok = config.Entrypoint == [ keel ];
          msg = "entrypoint is the venv's keel";
        }
        {
          ok = config.Cmd == [ "serve" ];
          msg = "default command is serve";
        }
        {
          ok = config.ExposedPorts == { "8000/tcp" = { }; };
          msg = "exposes 8000/tcp only";
        }
        {
          ok = config.Healthcheck.Test == [
            "CMD"
            keel
            "healthcheck"
            "api"
          ];
          msg = "healthcheck is exec-form `keel healthcheck api` (no shell)";
        }
        {
          ok = all (k: config.Healthcheck ? ${k}) [
            "Interval"
            "Timeout"
            "StartPeriod"
            "Retries"
          ];
          msg = "healthcheck sets interval, timeout, start period and retries";
        }
        {
          ok = envValue env "PATH" == venvBin;
          msg = "PATH is the venv's bin only";
        }
        {
          ok = envValue env "SSL_CERT_FILE" == "/etc/ssl/certs/ca-certificates.crt";
          msg = "SSL_CERT_FILE points at the CA bundle";
        }
        {
          ok = elem stub.dockerTools.caCertificates args.contents;
          msg = "contents include dockerTools.caCertificates";
        }
        {
          ok =
            envValue env "TZDIR" != null
            && endsWith "/share/zoneinfo" (envValue env "TZDIR")
            && envValue env "PYTHONTZPATH" == envValue env "TZDIR";
          msg = "TZDIR and PYTHONTZPATH point at tzdata";
        }
        {
          ok = envValue env "PYTHONUNBUFFERED" == "1" && envValue env "PYTHONDONTWRITEBYTECODE" == "1";
          msg = "PYTHONUNBUFFERED=1 and PYTHONDONTWRITEBYTECODE=1 (read-only root)";
        }
        {
          ok = envValue env "HTTP_HOST" == "0.0.0.0" && envValue env "HTTP_PORT" == "8000";
          msg = "the API listens on 0.0.0.0:8000";
        }
        {
          ok = envValue env "KEEL_ROOT" == "/app" && config.WorkingDir == "/app";
          msg = "KEEL_ROOT and WorkingDir are /app";
        }
        {
          ok = envValue env "HOME" == "/home/keel";
          msg = "HOME is /home/keel";
        }
        {
          ok = length (filter (startsWith "NVIDIA_") env) == (if gpu then 2 else 0);
          msg = "NVIDIA_* env only in the GPU variant";
        }
        {
          ok =
            if gpu then
              envValue env "NVIDIA_VISIBLE_DEVICES" == "all"
              && envValue env "NVIDIA_DRIVER_CAPABILITIES" == "compute,utility"
              && elem "/usr/lib64" (builtins.filter builtins.isString (builtins.split ":" (envValue env "LD_LIBRARY_PATH")))
            else
              envValue env "LD_LIBRARY_PATH" == null;
          msg =
            if gpu then
              "NVIDIA_VISIBLE_DEVICES=all, capabilities compute,utility, LD_LIBRARY_PATH with the toolkit's library dirs"
            else
              "no LD_LIBRARY_PATH outside the GPU variant";
        }
        {
          ok = !any (c: match forbidden c.name != null) args.contents;
          msg = "no shell or package manager in contents";
        }
        {
          ok = args.created == "1970-01-01T00:00:01Z";
          msg = "fixed creation time 1970-01-01T00:00:01Z (bit-reproducible)";
        }
        {
          ok = !(args.enableFakechroot or false);
          msg = "no fakechroot (chown under fakechroot fails)";
        }
        {
          ok =
            match ".*mkdir -p tmp \\./home/keel.*chmod 1777 tmp.*" args.extraCommands != null
            && match ".*chown 10001:10001 \\./home/keel.*" args.fakeRootCommands != null;
          msg = "/tmp is 1777 and /home/keel belongs to 10001";
        }
        {
          ok = args.maxLayers >= 50;
          msg = "layered (one layer per store path, dependencies shared)";
        }
        {
          ok =
            config.Labels."org.opencontainers.image.revision" == stub.inputs.self.rev
            && config.Labels."org.opencontainers.image.version" == version
            && config.Labels."org.keel.builder" == "nix"
            && all (k: config.Labels ? ${k}) [
              "org.opencontainers.image.title"
              "org.opencontainers.image.description"
              "org.opencontainers.image.licenses"
            ];
          msg = "labels: OCI revision from the flake, version from pyproject.toml, title, description, licenses; org.keel.builder=nix";
        }
      ];
    in
    map (r: "${system}/${variant}: ${r.msg}") (filter (r: !r.ok) rules);

  images = builtins.listToAttrs (
    concatMap (system: [
      {
        name = "${system}/cpu";
        value = outputs.packages.${system}.image;
      }
      {
        name = "${system}/gpu";
        value = outputs.packages.${system}.image-gpu;
      }
    ]) settings.systems
  );

  failures = concatMap (
    key:
    let
      parts = builtins.split "/" key;
    in
    checkImage (builtins.elemAt parts 0) (builtins.elemAt parts 2) images.${key}
  ) (attrNames images);
in
{
  inherit failures;
  ok = failures == [ ];
  checked = attrNames images;
  # The image configs as JSON-able data (contents reduced to names) for the Containerfile
  # comparison in tests/unit/nix/test_nix_image_contract.py.
  images = builtins.mapAttrs (_: args: {
    inherit (args)
      name
      tag
      created
      config
      ;
    contents = map (c: c.name) args.contents;
  }) images;
}
