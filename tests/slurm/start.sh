#!/usr/bin/env bash
# start.sh -- bring up a single-node loopback Slurm (munged + slurmctld + slurmd) for tests.
# Run as root; no systemd or cgroups needed. Idempotent: installs slurmctld, slurmd,
# slurm-client and munge if missing, writes /etc/slurm/slurm.conf from slurm.conf.in,
# starts only the daemons that are not running (a changed config restarts the Slurm
# daemons) and returns once the node accepts jobs. Stop with stop.sh.
# Environment: SLURM_CPUS (CPUs advertised, default 4; more than the machine has is fine),
#   SLURM_MEM_MB (default 80% of RAM), SLURM_START_TIMEOUT (seconds, default 60).
# Exit 0: healthy; 1: cannot install/configure/start (logs: /var/log/slurm, /var/log/munge).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)
CPUS=${SLURM_CPUS:-4}
MEM_MB=${SLURM_MEM_MB:-$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)}
TIMEOUT=${SLURM_START_TIMEOUT:-60}

log() { echo "[slurm-start] $*"; }
die() { echo "[slurm-start] ERROR: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"

# is PID COMM: PID is a live (not zombie) process named COMM
is() {
  local stat
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }; [ "${stat%% *}" != Z ]
}
alive() { is "$(cat "$1" 2>/dev/null)" "$2"; }   # alive PIDFILE COMM
# stop PIDFILE COMM: SIGTERM, SIGKILL after 15 s; never kills by name. The pid is read once:
# a daemon deletes its pid file early in its shutdown.
stop() {
  local pid _
  pid=$(cat "$1" 2>/dev/null) || return 0
  if is "$pid" "$2"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do is "$pid" "$2" || break; sleep 0.5; done
    if is "$pid" "$2"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$1"   # a stale slurmctld pid file makes "apt-get remove slurmctld" fail
}

# 1. packages. Their postinst scripts try to start services; without systemd that
#    fails harmlessly (or policy-rc.d denies it).
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
   ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  pkgs=(slurmctld slurmd slurm-client munge)
  apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null; } ||
    die "apt-get install ${pkgs[*]} failed"
fi

# 2. munge key (Debian's postinst normally creates it) and directories
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm
install -d -m 0755 /var/spool/slurmd /etc/slurm

# 3. slurm.conf. Never overwrite a real cluster's config: only a test cluster's.
if [ -s "$CONF" ] && ! grep -q '^ClusterName=testcluster$' "$CONF"; then
  die "$CONF belongs to another cluster (no ClusterName=testcluster); not touching it"
fi
new=$(sed -e "s/@NODE@/$NODE/g" -e "s/@CPUS@/$CPUS/g" -e "s/@MEM_MB@/$MEM_MB/g" "$HERE/slurm.conf.in")
if [ "$new" != "$(cat "$CONF" 2>/dev/null)" ]; then
  printf '%s\n' "$new" >"$CONF"
  log "wrote $CONF (node $NODE, CPUs=$CPUS, RealMemory=$MEM_MB); restarting Slurm daemons"
  stop /run/slurmd.pid slurmd
  stop /run/slurmctld.pid slurmctld
fi

# 4. daemons (each forks and writes its pid file)
if ! alive /run/munge/munged.pid munged; then
  log "starting munged"
  # --force: start even if a killed munged left its socket behind
  runuser -u munge -- /usr/sbin/munged --force || die "munged did not start"
fi
munge_ok() { timeout 5 munge -n </dev/null 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }
for _ in $(seq 20); do munge_ok && break; sleep 0.5; done
munge_ok || die "munge does not work"
if ! alive /run/slurmctld.pid slurmctld; then
  log "starting slurmctld"; /usr/sbin/slurmctld || die "slurmctld did not start"
fi
if ! alive /run/slurmd.pid slurmd; then
  log "starting slurmd"; /usr/sbin/slurmd || die "slurmd did not start"
fi

# 5. wait for the controller and an idle node (resume it once if an earlier run left it down)
resumed=0
for _ in $(seq "$TIMEOUT"); do
  if scontrol ping 2>/dev/null | grep -q 'is UP'; then
    state=$(sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | head -n 1)
    case "$state" in
      idle|mix|alloc|comp) log "healthy: node $NODE $state, $CPUS CPUs"; exit 0 ;;
      drain*|drng*|down*)
        [ "$resumed" = 1 ] || scontrol update nodename="$NODE" state=resume 2>/dev/null || true
        resumed=1 ;;
    esac
  fi
  sleep 1
done
sinfo -N -l || true
die "node not healthy after ${TIMEOUT}s; see /var/log/slurm/slurmctld.log and slurmd.log"
