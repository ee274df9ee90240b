#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try `launcher=slurm` (and run tests/test_slurm_real.py)
# without a cluster. Debian/Ubuntu, as root:
#
#   scripts/slurm-local.sh          install slurmctld, slurmd, the client tools and munge (if missing),
#                                   write /etc/slurm/slurm.conf for this host, start munged, slurmctld and
#                                   slurmd, and wait until the node takes jobs
#   scripts/slurm-local.sh stop     stop the three daemons again (queued jobs are kept for the next start)
#
# Running it again is harmless: what is installed stays, running daemons are left alone (restarted only
# when the generated slurm.conf changed, e.g. a new hostname). A slurm.conf this script did not write is
# never overwritten. One partition, `debug`, holds the node; jobs run as the user who submitted them.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by dlx scripts/slurm-local.sh"
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
LOGS=/var/log/slurm
STOP="$(cd "$(dirname "$0")" && pwd)/$(basename "$0") stop"

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_one() {  # stop the daemon whose pid file is $1, by its pid; wait up to 10 s
    local pid
    alive "$1" || return 0
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    say "$2 (pid $pid) did not stop within 10 s"
}

[ "$(id -u)" = 0 ] || die "must be run as root (it installs packages and starts the slurmctld, slurmd and munged daemons); try: sudo $0"

if [ "${1:-start}" = stop ]; then
    stop_one "$SLURMD_PID" slurmd
    stop_one "$CTLD_PID" slurmctld
    stop_one "$MUNGE_PID" munged
    say "stopped slurmd, slurmctld and munged"
    exit 0
fi
[ "${1:-start}" = start ] || die "usage: $0 [start|stop]"

# 1. packages
missing=()
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found: install SLURM (slurmctld, slurmd, the client tools) and munge yourself, then run this again"
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # install without starting the packages' services (there may be no init system); started below
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
        || die "apt-get could not install ${missing[*]}"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# 2. munge: a key, then the daemon (as the munge user)
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null 2>&1; then mungekey --create --keyfile=/etc/munge/munge.key
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    say "created /etc/munge/munge.key"
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- munged || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 25); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
fi
munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || die "munge does not work (see /var/log/munge/munged.log)"

# 3. slurm.conf for this host: its CPUs and memory as slurmd sees them
node=$(hostname -s)
hw=$(slurmd -C 2>/dev/null | head -n 1)
[[ "$hw" == NodeName=* ]] || die "slurmd -C did not describe this machine: $hw"
hw=${hw#NodeName=* }  # CPUs=... Boards=... RealMemory=...
new=$(cat <<EOF
$MARK on $(date -u +%Y-%m-%dT%H:%M:%SZ) (regenerated on each run; delete this line to keep your edits)
ClusterName=dlxlocal
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
ReturnToService=2
# scancel: SIGTERM, then SIGKILL 5 s later (default 30 s)
KillWait=5
InactiveLimit=0
MinJobAge=300
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
)
changed=0
if [ -e "$CONF" ] && ! head -n 1 "$CONF" | grep -qF "$MARK"; then
    say "keeping $CONF (not written by this script)"
elif [ ! -e "$CONF" ] || [ "$(tail -n +2 "$CONF")" != "$(tail -n +2 <<<"$new")" ]; then
    mkdir -p "$(dirname "$CONF")"
    printf '%s\n' "$new" >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
    changed=1
    say "wrote $CONF (node $node: $hw)"
fi
mkdir -p /var/spool/slurmctld /var/spool/slurmd "$LOGS"

# 4. the daemons (restarted when the config changed under them)
if [ $changed = 1 ]; then stop_one "$SLURMD_PID" slurmd; stop_one "$CTLD_PID" slurmctld; fi
alive "$CTLD_PID" || slurmctld || die "slurmctld did not start (see $LOGS/slurmctld.log)"
alive "$SLURMD_PID" || slurmd || die "slurmd did not start (see $LOGS/slurmd.log)"

# 5. wait until the node takes jobs
state=""
for i in $(seq 60); do
    state=$(sinfo -h -n "$node" -o %t 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle|mix|alloc|comp) break ;;
        down*|drain*|drng*) [ "$i" = 10 ] && scontrol update NodeName="$node" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case "$state" in
    idle|mix|alloc|comp) ;;
    *) die "node $node is '${state:-not reported}' after 30 s (see $LOGS/slurmctld.log and $LOGS/slurmd.log)" ;;
esac
say "SLURM is up: node $node ($state), partition debug; try: srun hostname"
say "stop it with: $STOP"
