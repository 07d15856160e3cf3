#!/bin/bash
# Runs inside the booted arm64 test image (cost-agent-boot-check.service, as root) and checks
# the agent as systemd runs it. Each result is a line "CHECK <name> PASS|FAIL|PENDING <detail>"
# or "TIME <phase> <seconds>"; the file is copied to the second disk (/dev/vdb) after every
# line, so the host sees how far it got even if the VM hangs, and echoed on the console.
# Every wait is bounded. At the end the VM powers off.
set -u
RESULTS=/run/boot-check.txt
DISK=/dev/vdb
UNIT=cost-agent.service
MODULE=session_cost_consumer
TOPIC="everest_api/1/session_cost_consumer"
: >"$RESULTS"

say() {
    echo "$*" >>"$RESULTS"
    echo "boot-check: $*" >/dev/console
    cat "$RESULTS" >"$DISK" 2>/dev/null && sync
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
prop() { systemctl show -p "$2" --value "$1"; }
check() { # check NAME OK(0/1) DETAIL
    if [ "$2" = 0 ]; then say "CHECK $1 PASS $3"; else say "CHECK $1 FAIL $3"; fi
}
# wait_for SECONDS COMMAND...: poll every 0.2 s until COMMAND succeeds; 1 on timeout
wait_for() {
    local end=$(( $(date +%s) + $1 )); shift
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}
since() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }'; }
mono_s() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000000 }'; }

say "START $(uname -m) $(uname -r) systemd $(systemctl --version | head -n1 | cut -d' ' -f2)"

# ---- boot to multi-user.target
is_active() { [ "$(prop "$1" ActiveState)" = active ]; }
wait_for 180 is_active multi-user.target
say "TIME boot_to_multi_user $(mono_s "$(prop multi-user.target ActiveEnterTimestampMonotonic)")"
say "INFO $(systemd-analyze 2>/dev/null | head -n1)"

# ---- ready through READY=1 (Type=notify)
running() { [ "$(prop "$1" SubState)" = running ] && is_active "$1"; }
if wait_for 120 running "$UNIT"; then
    start=$(prop "$UNIT" ExecMainStartTimestampMonotonic)
    ready=$(prop "$UNIT" ActiveEnterTimestampMonotonic)
    say "TIME agent_ready $(mono_s "$ready")"
    status=$(systemctl status --no-pager "$UNIT" | sed -n 's/^ *Active: //p')
    check ready_notify "$([ "$(prop "$UNIT" Type)" = notify ] && [ "$(prop "$UNIT" NRestarts)" = 0 ] && echo 0 || echo 1)" \
        "Type=$(prop "$UNIT" Type); $status; exec to READY=1 $(awk -v a="$start" -v b="$ready" 'BEGIN { printf "%.2f", (b - a) / 1e6 }') s"
else
    check ready_notify 1 "not running after 120 s: $(systemctl is-active "$UNIT")"
    journalctl -u "$UNIT" --no-pager | tail -n 20 >>"$RESULTS"
fi
PID=$(prop "$UNIT" MainPID)

# ---- the view file shows the session (the EVerest stand-in plays one every ~15 s)
has_session() { grep -q '"session_id":"demo-session-1"' /run/cost-agent/display.json 2>/dev/null; }
t0=$(uptime_s)
if wait_for 60 has_session; then
    check view_session 0 "$(since "$t0") s; $(head -c 160 /run/cost-agent/display.json)"
else
    check view_session 1 "$(head -c 300 /run/cost-agent/display.json 2>&1)"
fi

# ---- the sandbox, on the running process
t0=$(uptime_s)
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$PID/status")
check dynamic_user "$([ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] && echo 0 || echo 1)" \
    "uid $uid ($(prop "$UNIT" User), DynamicUser=$(prop "$UNIT" DynamicUser))"
ro=0; detail=""
for dir in /usr /etc; do
    out=$(nsenter -t "$PID" -m touch "$dir/.cost-agent-probe" 2>&1) && ro=1
    detail="$detail $dir: ${out:-WRITABLE};"
done
check read_only_usr_etc "$ro" "${detail% ;}"
caps=$(grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' "/proc/$PID/status" | awk '{ print $2 }' | sort -u)
check no_capabilities "$([ "$caps" = 0000000000000000 ] && echo 0 || echo 1)" \
    "CapInh/Prm/Eff/Bnd/Amb = $caps; $(grep -E '^(NoNewPrivs|Seccomp):' "/proc/$PID/status" | tr -s '\t\n' '  ')"
# MemoryDenyWriteExecute: the agent (CPython) runs under it, and the same interpreter is refused
# W+X memory in a unit with the setting (a transient one: the agent's own is not to be touched)
mdwe=$(prop "$UNIT" MemoryDenyWriteExecute)
probe=$(systemd-run --quiet --wait --pipe --collect -p MemoryDenyWriteExecute=yes \
    -p DynamicUser=yes /opt/cost-agent/bin/python -c '
import mmap
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("W+X allowed")
except OSError as exc:
    print("W+X refused:", exc)' 2>&1)
check mdwe_cpython "$([ "$mdwe" = yes ] && running "$UNIT" && case $probe in *refused*) echo 0;; *) echo 1;; esac)" \
    "MemoryDenyWriteExecute=$mdwe, agent running; probe: $probe"
score=$(systemd-analyze security --no-pager "$UNIT" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
check security_exposure "$(awk -v s="${score:-99}" 'BEGIN { exit !(s <= 1.5) }' && echo 0 || echo 1)" \
    "systemd-analyze security on the target: ${score:-?} (limit 1.5)"
say "TIME sandbox_checks $(since "$t0")"

# ---- the watchdog is fed for 60 s and nothing is killed
t0=$(uptime_s)
w0=$(prop "$UNIT" WatchdogTimestampMonotonic)
sleep 60
w1=$(prop "$UNIT" WatchdogTimestampMonotonic)
check watchdog_60s "$([ "$w1" -gt "$w0" ] && [ "$(prop "$UNIT" MainPID)" = "$PID" ] && [ "$(prop "$UNIT" NRestarts)" = 0 ] && echo 0 || echo 1)" \
    "WatchdogTimestamp advanced $(mono_s $(( w1 - w0 ))) s in 60 s (WatchdogSec=$(prop "$UNIT" WatchdogUSec), pings every 10 s); same PID $PID, NRestarts=$(prop "$UNIT" NRestarts)"
say "TIME watchdog_check $(since "$t0")"

# ---- kill -9 of the main PID: restarted by systemd
t0=$(uptime_s)
kill -9 "$PID"
restarted() { [ "$(prop "$UNIT" NRestarts)" = 1 ] && running "$UNIT" && [ "$(prop "$UNIT" MainPID)" != "$PID" ]; }
if wait_for 60 restarted; then
    check kill9_restart 0 "NRestarts=1, new PID $(prop "$UNIT" MainPID) running after $(since "$t0") s (RestartSec=$(prop "$UNIT" RestartUSec))"
else
    check kill9_restart 1 "NRestarts=$(prop "$UNIT" NRestarts) $(systemctl is-active "$UNIT")"
fi
say "TIME kill9_check $(since "$t0")"

# ---- an injected task crash (tests/fault_entry.py) exits 1 and is restarted
t0=$(uptime_s)
FAULT=cost-agent@fault.service
systemctl start --no-block "$FAULT"
fault_done() {
    # "Failed with result" comes before the restart (RestartSec): wait for the restart itself;
    # an exit 0 ("Deactivated successfully") is never restarted, so it ends the wait too.
    journalctl -u "$FAULT" -o cat --no-pager | grep -Eq 'Scheduled restart job|Deactivated successfully'
}
wait_for 90 fault_done
exits=$(journalctl -u "$FAULT" -o cat --no-pager | grep -E 'Main process exited|Deactivated|Scheduled restart' | head -n 3 | tr '\n' ' ')
systemctl stop "$FAULT"
if journalctl -u "$FAULT" -o cat --no-pager | grep -q 'status=1/FAILURE' &&
        journalctl -u "$FAULT" -o cat --no-pager | grep -q 'Scheduled restart job'; then
    check crash_exit1_restart 0 "$exits"
else
    check crash_exit1_restart 1 "expected exit status 1 and a restart (issue 8): $exits"
fi
say "TIME crash_check $(since "$t0")"

# ---- systemctl stop: exit 0 within 1 s, communication_check as stop_check_on_exit says
# stop_test UNIT MODULE WANT_FALSE(yes/no)
stop_test() {
    local unit=$1 module=$2 want=$3 sub pid exit_us req_us done_us got status
    settled() { running "$1" || [ "$(prop "$1" ActiveState)" = failed ]; }
    wait_for 90 settled "$unit"
    running "$unit" || { check "stop_$4" 1 "$unit not running: $(systemctl is-active "$unit"); $(journalctl -u "$unit" -o cat --no-pager | tail -n 3 | tr '\n' ' ')"; return; }
    sub=/run/sub-$module.txt
    timeout 20 mosquitto_sub -h 127.0.0.1 -v -t "$TOPIC/$module/m2e/communication_check" >"$sub" 2>&1 &
    pid=$!
    wait_for 10 grep -q true "$sub"
    req_us=$(awk '{ printf "%d", $1 * 1000000 }' /proc/uptime)
    systemctl stop "$unit"
    done_us=$(awk '{ printf "%d", $1 * 1000000 }' /proc/uptime)
    exit_us=$(prop "$unit" ExecMainExitTimestampMonotonic)
    # A stale exit stamp (from an earlier main process) predates the request: then the stop
    # job's own duration, an upper bound of the agent's stop, is what is measured.
    [ "$exit_us" -ge "$req_us" ] 2>/dev/null || exit_us=$done_us
    status="Result=$(prop "$unit" Result) ExecMainStatus=$(prop "$unit" ExecMainStatus)"
    sleep 2
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    got=$(grep -c ' false$' "$sub")
    local secs ok=0
    secs=$(awk -v a="$req_us" -v b="$exit_us" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')
    [ "$(prop "$unit" Result)" = success ] && [ "$(prop "$unit" ExecMainStatus)" = 0 ] || ok=1
    awk -v s="$secs" 'BEGIN { exit !(s <= 1.0) }' || ok=1
    if [ "$want" = yes ]; then [ "$got" -ge 1 ] || ok=1; else [ "$got" = 0 ] || ok=1; fi
    check "stop_$4" "$ok" "$status, stop to exit $secs s (limit 1 s), 'false' published $got x (want: $want)"
}
t0=$(uptime_s)
stop_test "$UNIT" "$MODULE" no default
systemctl start --no-block cost-agent@stopcheck.service
stop_test cost-agent@stopcheck.service stopcheck_test yes check_on_exit_true
say "TIME stop_checks $(since "$t0")"

say "DONE $(uptime_s)"
systemctl poweroff --no-block
