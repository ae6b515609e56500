#!/usr/bin/env bash
# A Docker Swarm of N nodes on this one machine, for tests and for trying Keel on Swarm: each
# node is its own dockerd (own data-root, exec-root, pidfile, socket, containerd namespace,
# cgroup parent) in its own network namespace, cabled by veth pairs to a bridge in a "switch"
# namespace. The host's network, its dockerd and docker0 are never touched: no interface, route
# or iptables rule is added to the host namespace.  Needs root, iproute2, util-linux, docker.io.
#
# Usage: containers/swarm/cluster.sh ACTION [NODE]
#   up          create the namespaces, start the daemons, form the swarm, label the nodes
#   down        remove everything up created (daemons, containers, namespaces, data)
#   status      nodes and their state, as the manager sees them
#   kill N      node N dies: SIGKILL its dockerd and every process in its namespace
#   start N     start node N's dockerd again (it rejoins with its old identity)
#   host N      print node N's DOCKER_HOST (unix socket)
#   addr N      print node N's address on the cluster network
#   exec N CMD  run CMD in node N's network namespace
#   client CMD  run CMD on the cluster's client host (the switch namespace, 198.51.100.254):
#               e.g. wrk or curl against the proxy on http://198.51.100.1:8080
# Env: KSW_NODES (3), KSW_HEARTBEAT (swarm dispatcher heartbeat, 2s), KSW_STATE
#      (/var/lib/keel-swarm), KSW_RUN (/run/ksw: short, unix socket paths are limited).
# Node 1 is the manager and holds the labels keel.db, keel.redis, keel.edge, keel.registry
# (docs/cluster.md); the others are workers.
set -euo pipefail
NODES="${KSW_NODES:-3}"
STATE="${KSW_STATE:-/var/lib/keel-swarm}"
RUN="${KSW_RUN:-/run/ksw}"
HEARTBEAT="${KSW_HEARTBEAT:-2s}"
NET=198.51.100  # TEST-NET-2: never a real LAN (192.0.2.0/24 can be the host's own)
REGISTRY_PORT=5000
DOCKERD="${DOCKERD:-$(command -v dockerd || echo /usr/sbin/dockerd)}"
DOCKER="${DOCKER:-/usr/bin/docker}"
SWITCH=ksw-sw
MANAGER_LABELS=(keel.db=true keel.redis=true keel.edge=true keel.registry=true)

say() { printf '%s cluster.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { say "$*"; exit 1; }
ns() { echo "ksw$1"; }
addr() { echo "$NET.$1"; }
sock() { echo "unix://$RUN/$1.sock"; }
node_docker() { local n="$1"; shift; "$DOCKER" -H "$(sock "$n")" "$@"; }
has_ns() { [ -e "/run/netns/$1" ]; }

need() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces and dockerd)"
  local missing=()
  for tool in ip nsenter unshare "$DOCKERD" "$DOCKER"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ ${#missing[@]} = 0 ] || die "missing ${missing[*]}: apt-get install iproute2 util-linux docker.io"
}

daemon_up() { node_docker "$1" version >/dev/null 2>&1; }

make_switch() {
  has_ns "$SWITCH" && return
  ip netns add "$SWITCH"
  ip -n "$SWITCH" link set lo up
  ip -n "$SWITCH" link add br0 type bridge
  ip -n "$SWITCH" link set br0 up
  # The switch doubles as the cluster's client LAN host (load generators, curl): .254.
  ip -n "$SWITCH" addr add "$NET.254/24" dev br0
}

make_node_net() {
  local n="$1" name
  name="$(ns "$n")"
  has_ns "$name" && return
  ip netns add "$name"
  ip -n "$name" link set lo up
  # The pair is created inside the node and its peer moved straight into the switch: it never
  # shows up in the host namespace.
  ip -n "$name" link add eth0 type veth peer name "v$n" netns "$SWITCH"
  ip -n "$SWITCH" link set "v$n" master br0 up
  ip -n "$name" addr add "$(addr "$n")/24" dev eth0
  ip -n "$name" link set eth0 up
}

write_daemon_json() {
  local n="$1" dir="$STATE/$1"
  mkdir -p "$dir/root"
  # deprecated-key-path: else every node reads /etc/docker/key.json and has the host's engine
  # id. no-new-privileges: what Swarm cannot set per service (Compose's security_opt), set for
  # every container of the node. The cluster's registry is plain HTTP on the cluster network.
  cat >"$dir/daemon.json" <<EOF
{
  "deprecated-key-path": "$dir/key.json",
  "no-new-privileges": true,
  "insecure-registries": ["$(addr 1):$REGISTRY_PORT"],
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "3"}
}
EOF
}

start_daemon() {
  local n="$1" name dir
  name="$(ns "$n")"
  dir="$STATE/$n"
  if daemon_up "$n"; then return; fi
  write_daemon_json "$n"
  mkdir -p "$RUN/cg$n" "$RUN/e$n"
  # No DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: with it set a node never pulls a missing image.
  # ip netns exec would remount /sys without the cgroup hierarchy ("Devices cgroup isn't
  # mounted"): enter the netns, take a private mount + UTS namespace, bring the cgroup mounts
  # along under a fresh sysfs. The mount namespace keeps the node's overlay mounts out of the
  # host's and frees them when the node's last process exits.
  nsenter --net="/run/netns/$name" unshare --mount --uts --propagation slave sh -c "
    hostname $name
    mount --rbind /sys/fs/cgroup $RUN/cg$n && mount -t sysfs sysfs /sys \
      && mount --move $RUN/cg$n /sys/fs/cgroup || exit 1
    exec $DOCKERD --config-file $dir/daemon.json \
      --data-root $dir/root --exec-root $RUN/e$n --pidfile $RUN/$n.pid -H $(sock "$n") \
      --containerd-namespace $name --containerd-plugins-namespace ${name}p \
      --cgroup-parent /$name --storage-driver overlay2 \
      --default-address-pool base=198.18.$((n * 16)).0/20,size=24 \
      --iptables=true --userland-proxy=false
  " >>"$dir/dockerd.log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 150); do
    daemon_up "$n" && return
    sleep 0.2
  done
  tail -n 30 "$dir/dockerd.log" >&2
  die "node $n: dockerd did not answer on $(sock "$n") within 30 s (log: $dir/dockerd.log)"
}

node_state() { node_docker "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo down; }

form_swarm() {
  if [ "$(node_state 1)" != active ]; then
    node_docker 1 swarm init --advertise-addr "$(addr 1)" --listen-addr "$(addr 1):2377" \
      --default-addr-pool 198.19.0.0/16 --default-addr-pool-mask-length 24 \
      --dispatcher-heartbeat "$HEARTBEAT" >/dev/null
  fi
  local token n
  token="$(node_docker 1 swarm join-token -q worker)"
  for n in $(seq 2 "$NODES"); do
    [ "$(node_state "$n")" = active ] && continue
    node_docker "$n" swarm join --advertise-addr "$(addr "$n")" --listen-addr "$(addr "$n"):2377" \
      --token "$token" "$(addr 1):2377" >/dev/null
  done
  local label
  for label in "${MANAGER_LABELS[@]}"; do
    node_docker 1 node update --label-add "$label" "$(ns 1)" >/dev/null
  done
  # Every node ready before anyone deploys.
  local i ready
  for i in $(seq 1 100); do
    ready="$(node_docker 1 node ls --format '{{.Status}}' | grep -c '^Ready$' || true)"
    [ "$ready" = "$NODES" ] && return
    sleep 0.3
  done
  node_docker 1 node ls >&2
  die "only $ready of $NODES nodes are Ready after 30 s"
}

up() {
  need
  [ "$NODES" -ge 1 ] && [ "$NODES" -le 9 ] || die "KSW_NODES=$NODES: use 1 to 9"
  local started n
  started=$(date +%s.%N)
  make_switch
  for n in $(seq 1 "$NODES"); do make_node_net "$n"; done
  for n in $(seq 1 "$NODES"); do start_daemon "$n"; done
  form_swarm
  say "swarm of $NODES nodes up in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s; manager: DOCKER_HOST=$(sock 1)"
  node_docker 1 node ls >&2
}

# Processes in node N's network namespace (its dockerd, containerd, shims and containers).
ns_pids() { ip netns pids "$(ns "$1")" 2>/dev/null || true; }

stop_node() {
  local n="$1" signal="${2:-TERM}" pid i
  if [ "$signal" = TERM ] && daemon_up "$n"; then
    # Containers first, so no task is left running when the daemon goes.
    local ids
    ids="$(node_docker "$n" ps -aq 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [ -z "$ids" ] || node_docker "$n" rm -f $ids >/dev/null 2>&1 || true
    node_docker "$n" swarm leave --force >/dev/null 2>&1 || true
  fi
  if [ -f "$RUN/$n.pid" ]; then
    pid="$(cat "$RUN/$n.pid")"
    kill "-$signal" "$pid" 2>/dev/null || true
  fi
  for i in $(seq 1 100); do
    [ -z "$(ns_pids "$n")" ] && break
    # Whatever outlived its daemon (shims, container processes) goes too, by pid.
    [ "$i" -gt 25 ] || [ "$signal" = KILL ] && for pid in $(ns_pids "$n"); do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.2
  done
  [ -z "$(ns_pids "$n")" ] || die "node $n: processes still running in $(ns "$n"): $(ns_pids "$n" | tr '\n' ' ')"
  rm -f "$RUN/$n.pid"
}

down() {
  need
  local n
  for n in $(seq "$NODES" -1 1); do
    has_ns "$(ns "$n")" || continue
    stop_node "$n" TERM
  done
  for n in $(seq 1 9); do
    has_ns "$(ns "$n")" && ip netns del "$(ns "$n")"
    # --cgroup-parent leaves its (empty) directories behind.
    for dir in /sys/fs/cgroup/*/"$(ns "$n")"; do
      [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
    done
  done
  has_ns "$SWITCH" && ip netns del "$SWITCH"
  if [ -d "$STATE" ]; then
    # Mounts lived in the nodes' private mount namespaces, gone with their processes.
    if findmnt -rno TARGET | grep -q "^$STATE"; then die "mounts remain under $STATE; not removing it"; fi
    rm -rf "$STATE"
  fi
  rm -rf "$RUN"
  say "cluster removed"
}

status() {
  local n
  for n in $(seq 1 "$NODES"); do
    printf 'node %s %s %s\n' "$n" "$(addr "$n")" "$(node_state "$n")"
  done
  daemon_up 1 && node_docker 1 node ls
}

ACTION="${1:-status}"
case "$ACTION" in
  up) up ;;
  down) down ;;
  status) status ;;
  kill)
    need; [ -n "${2:-}" ] || die "kill needs a node number"
    stop_node "$2" KILL
    say "node $2 killed (dockerd and every process in $(ns "$2"))"
    ;;
  start) need; [ -n "${2:-}" ] || die "start needs a node number"; start_daemon "$2" ;;
  host) echo "$(sock "${2:-1}")" ;;
  addr) addr "${2:-1}" ;;
  exec) [ -n "${2:-}" ] || die "exec needs a node number"; n="$2"; shift 2; exec nsenter --net="/run/netns/$(ns "$n")" "$@" ;;
  client) shift; exec nsenter --net="/run/netns/$SWITCH" "$@" ;;
  *) die "unknown action $ACTION (up down status kill start host addr exec client)" ;;
esac
