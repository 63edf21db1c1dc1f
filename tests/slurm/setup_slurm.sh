#!/usr/bin/env bash
# Idempotent single-node SLURM for tests and CI (Debian/Ubuntu, run as root).
#
#   bash tests/slurm/setup_slurm.sh
#
# Installs Debian's slurm-wlm + munge (no slurmdbd), writes a slurm.conf for
# this host (one node, partition `debug`), starts munged, slurmctld and slurmd
# directly (no systemd), waits until the node is idle and runs a smoke job
# (`sbatch --wrap hostname`).  Running it again is cheap: the packages are not
# reinstalled and the daemons are only restarted if the configuration changed
# or one of them is not running.
#
# Exit codes: 0 = SLURM is up and runs jobs;
#             3 = SLURM cannot be installed/started here (reason on stderr),
#                 tests/test_slurm.py then skips.
#
# Environment knobs:
#   SLURM_FAKE_GPUS   number of GPUs the node advertises as gres/gpu
#                     (default: nproc). They are not real GPUs (each one is
#                     /dev/null; jobs see CUDA_VISIBLE_DEVICES=<index> but no
#                     device, so torch stays on the CPU); they only let jobs
#                     that request `--gpus=1` -- the cluster profile does for
#                     the GPU rules -- be scheduled. 0 disables gres/gpu.
#   SLURM_SETUP_TIMEOUT  seconds to wait for the node / smoke job (default 60)

set -u -o pipefail

PROG="setup_slurm.sh"
LOGDIR=/var/log/slurm
SETUP_LOG="$LOGDIR/setup_slurm.log"
FAKE_GPUS="${SLURM_FAKE_GPUS:-$(nproc)}"
TIMEOUT="${SLURM_SETUP_TIMEOUT:-60}"

skip() { # exit 3: the caller skips
    echo "$PROG: SLURM unavailable: $*" >&2
    exit 3
}
info() { echo "$PROG: $*" >&2; }

[ "$(id -u)" = 0 ] || skip "must run as root (daemons are started as root)"

# ----------------------------------------------------------------- install --
have_all() {
    local b
    for b in sbatch squeue sinfo scontrol munge; do
        command -v "$b" >/dev/null 2>&1 || return 1
    done
    for b in slurmctld slurmd munged; do
        [ -x "/usr/sbin/$b" ] || command -v "$b" >/dev/null 2>&1 || return 1
    done
    return 0
}

if ! have_all; then
    command -v apt-get >/dev/null 2>&1 || skip "slurm is not installed and apt-get is not available"
    export DEBIAN_FRONTEND=noninteractive
    info "installing slurm-wlm and munge via apt-get"
    ok=0
    for attempt in 1 2 3; do
        if apt-get update -qq >/tmp/setup_slurm_apt.log 2>&1 &&
            apt-get install -y -qq --no-install-recommends slurm-wlm munge \
                >>/tmp/setup_slurm_apt.log 2>&1; then
            ok=1
            break
        fi
        sleep $((attempt * 5))
    done
    if [ "$ok" != 1 ] || ! have_all; then
        tail -n 20 /tmp/setup_slurm_apt.log >&2 2>/dev/null || true
        skip "apt-get install slurm-wlm munge failed (see /tmp/setup_slurm_apt.log)"
    fi
fi
PATH="/usr/sbin:/sbin:$PATH"

mkdir -p "$LOGDIR" /var/spool/slurmctld /var/spool/slurmd /etc/slurm
exec 9>>"$SETUP_LOG"

# ------------------------------------------------------------------- munge --
KEY=/etc/munge/munge.key
if [ ! -s "$KEY" ]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$KEY" >&9 2>&1 || skip "cannot create $KEY"
    else
        dd if=/dev/urandom of="$KEY" bs=1 count=1024 status=none || skip "cannot create $KEY"
    fi
fi
chown -R munge:munge /etc/munge && chmod 0700 /etc/munge && chmod 0400 "$KEY"
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    # stale socket/pid from an earlier, dead munged
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    if command -v runuser >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged >&9 2>&1 || /usr/sbin/munged --force >&9 2>&1
    else
        /usr/sbin/munged --force >&9 2>&1
    fi
    for _ in $(seq 1 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || skip "munged does not start (see $SETUP_LOG, /var/log/munge/munged.log)"
fi

# -------------------------------------------------------------- slurm.conf --
HOST="$(hostname -s)"
[ -n "$HOST" ] || skip "hostname -s is empty"
CPUS="$(nproc --all 2>/dev/null || nproc)"
MEM_TOTAL="$(free -m | awk '/^Mem:/ {print $2}')"
# keep a little headroom so slurmd never reports "Low RealMemory"
REAL_MEM=$((MEM_TOTAL * 95 / 100))
[ "$REAL_MEM" -gt 0 ] || REAL_MEM=1000

GRES_NODE=""
GRES_TYPES=""
if [ "$FAKE_GPUS" -gt 0 ] 2>/dev/null; then
    GRES_TYPES="GresTypes=gpu"
    GRES_NODE="Gres=gpu:$FAKE_GPUS"
    # slurmd needs one device file per GPU; /dev/null stands in for them
    mkdir -p /run/slurm-fake-gpu
    : >/etc/slurm/gres.conf.new
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
        ln -sfn /dev/null "/run/slurm-fake-gpu/gpu$i"
        printf 'NodeName=%s Name=gpu File=/run/slurm-fake-gpu/gpu%s\n' "$HOST" "$i" >>/etc/slurm/gres.conf.new
    done
else
    : >/etc/slurm/gres.conf.new
fi

cat >/etc/slurm/slurm.conf.new <<EOF
# generated by tests/slurm/setup_slurm.sh -- single-node test cluster
ClusterName=convexadv
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# containers: no cgroups
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# completed jobs are recorded by the controller here
JobCompType=jobcomp/filetxt
JobCompLoc=${LOGDIR}/jobcomp.log
# keep finished jobs visible to squeue/scontrol for an hour
MinJobAge=3600
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# jobs without --mem must not grab the whole node
DefMemPerCPU=1000
SlurmctldTimeout=60
SlurmdTimeout=120
InactiveLimit=0
KillWait=10
Waittime=0
${GRES_TYPES}
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${REAL_MEM} ${GRES_NODE} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
EOF

changed=0
for f in slurm.conf gres.conf; do
    if ! cmp -s "/etc/slurm/$f.new" "/etc/slurm/$f"; then
        mv -f "/etc/slurm/$f.new" "/etc/slurm/$f"
        changed=1
    else
        rm -f "/etc/slurm/$f.new"
    fi
done
chmod 0644 /etc/slurm/slurm.conf /etc/slurm/gres.conf
touch "$LOGDIR/jobcomp.log"

# ----------------------------------------------------------------- daemons --
pid_alive() { # pidfile [process name]: the daemon of that pidfile runs
    local pid
    [ -s "$1" ] || return 1
    pid="$(cat "$1")"
    kill -0 "$pid" 2>/dev/null || return 1
    # a stale pidfile (e.g. after a reboot) may name an unrelated process
    [ -z "${2:-}" ] || grep -q "^${2}" "/proc/$pid/comm" 2>/dev/null
}
stop_pidfile() { # pidfile process-name
    local pid
    if pid_alive "$1" "$2"; then
        pid="$(cat "$1")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

if [ "$changed" = 1 ]; then
    info "slurm.conf changed: (re)starting slurmctld and slurmd"
    stop_pidfile /run/slurmd.pid slurmd
    stop_pidfile /run/slurmctld.pid slurmctld
fi

if ! pid_alive /run/slurmctld.pid slurmctld; then
    rm -f /run/slurmctld.pid
    /usr/sbin/slurmctld >&9 2>&1 || {
        tail -n 20 "$LOGDIR/slurmctld.log" >&2 2>/dev/null
        skip "slurmctld does not start (see $LOGDIR/slurmctld.log)"
    }
fi
# wait for the controller
for _ in $(seq 1 "$((TIMEOUT * 2))"); do
    scontrol ping 2>/dev/null | grep -q "UP" && break
    sleep 0.5
done
scontrol ping 2>/dev/null | grep -q "UP" || {
    tail -n 20 "$LOGDIR/slurmctld.log" >&2 2>/dev/null
    skip "slurmctld is not responding (see $LOGDIR/slurmctld.log)"
}

if ! pid_alive /run/slurmd.pid slurmd; then
    rm -f /run/slurmd.pid
    /usr/sbin/slurmd >&9 2>&1 || {
        tail -n 20 "$LOGDIR/slurmd.log" >&2 2>/dev/null
        skip "slurmd does not start (see $LOGDIR/slurmd.log)"
    }
fi

node_state() { sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1; }
state=""
for i in $(seq 1 "$((TIMEOUT * 2))"); do
    state="$(node_state)"
    case "$state" in
    idle | mixed | allocated | completing) break ;;
    inval*) break ;; # slurm.conf does not match the hardware: give up
    down* | drain* | drained* | fail*)
        # e.g. left DOWN by an earlier controller run; ReturnToService=2 normally handles it
        if [ $((i % 10)) = 0 ]; then
            scontrol update NodeName="$HOST" State=RESUME >&9 2>&1 || true
        fi
        ;;
    esac
    sleep 0.5
done
case "$state" in
idle | mixed | allocated | completing) ;;
*)
    sinfo -N -l >&2 2>/dev/null || true
    tail -n 20 "$LOGDIR/slurmd.log" >&2 2>/dev/null
    skip "node $HOST did not become idle (state: '${state:-none}'; see $LOGDIR/slurmd.log)"
    ;;
esac

# --------------------------------------------------------------- smoke job --
SMOKE_DIR="$(mktemp -d /tmp/setup_slurm.XXXXXX)"
chmod 0755 "$SMOKE_DIR"
jobid="$(sbatch --parsable -p debug -J setup_slurm_smoke -t 1 --mem=50 \
    -D "$SMOKE_DIR" -o "$SMOKE_DIR/out.txt" --wrap 'hostname' 2>"$SMOKE_DIR/err.txt")" || {
    cat "$SMOKE_DIR/err.txt" >&2
    skip "sbatch --wrap hostname is rejected"
}
jobid="${jobid%%;*}"
jstate=""
for _ in $(seq 1 "$((TIMEOUT * 2))"); do
    jstate="$(scontrol show job "$jobid" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n1)"
    case "$jstate" in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL) break ;;
    esac
    sleep 0.5
done
if [ "$jstate" != COMPLETED ] || ! grep -q . "$SMOKE_DIR/out.txt" 2>/dev/null; then
    scontrol show job "$jobid" >&2 2>/dev/null || true
    tail -n 20 "$LOGDIR/slurmd.log" >&2 2>/dev/null
    skip "smoke job $jobid did not complete (state: '${jstate:-unknown}')"
fi
info "SLURM is up: node $HOST (CPUs=$CPUS RealMemory=${REAL_MEM}M gpus=$FAKE_GPUS), partition debug; smoke job $jobid ran on $(cat "$SMOKE_DIR/out.txt")"
rm -rf "$SMOKE_DIR"
exit 0
