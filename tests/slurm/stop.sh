#!/usr/bin/env bash
# stop.sh -- stop the test cluster of start.sh (run as root; safe to repeat).
# Cancels all jobs and waits for them, then stops slurmd, slurmctld and munged by the
# pids in their pid files (SIGTERM, SIGKILL after 15 s; nothing is killed by name).
# Controller state stays in /var/spool/slurmctld, so job ids keep increasing.
set -uo pipefail
log() { echo "[slurm-stop] $*"; }
[ "$(id -u)" -eq 0 ] || { echo "[slurm-stop] ERROR: run as root" >&2; exit 1; }

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
    log "stopping $2 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do is "$pid" "$2" || break; sleep 0.5; done
    if is "$pid" "$2"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$1"   # a stale slurmctld pid file makes "apt-get remove slurmctld" fail
}

# jobs first, while the daemons can still clean up after them
if alive /run/slurmctld.pid slurmctld && scontrol ping 2>/dev/null | grep -q 'is UP'; then
  jobs=$(squeue -h -o '%A' 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null
    # A job whose program requeues it on SIGTERM (pyramidclip train under Slurm does) comes
    # back PENDING instead of ending: cancel what is left again every 2 s (a pending job at once).
    for i in $(seq 60); do
      left=$(squeue -h -o '%A' 2>/dev/null | tr '\n' ' ')
      [ -z "${left// /}" ] && break
      # shellcheck disable=SC2086
      if [ $((i % 4)) = 0 ]; then scancel $left 2>/dev/null; fi
      sleep 0.5
    done
  fi
fi
stop /run/slurmd.pid slurmd
stop /run/slurmctld.pid slurmctld
stop /run/munge/munged.pid munged
log "stopped"
