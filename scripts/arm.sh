#!/usr/bin/env bash
# The project as ARM code on this x86 machine: an arm64 (or armhf) Debian userland with the
# project and its runtime and dev dependencies as ARM wheels, run under qemu-user.
#
#   scripts/arm.sh setup          build or refresh the userland (idempotent; cached)
#   scripts/arm.sh run CMD...     run CMD (sh syntax) in it, in the repo (mounted at /src)
#   scripts/arm.sh test           setup, the pytest suite, bench/decode.py --check and
#                                 bench/footprint.py there, figures next to the native ones
#   ARCH=armhf scripts/arm.sh ... the same for 32-bit ARM (armv7)
#
# Everything comes from apt and pip by package name: qemu-user-static, binfmt-support,
# mmdebstrap and arch-test on the host; the userland from Debian (bookworm, the same Python
# 3.11); wheels from PyPI for the ARM platform. Wheels PyPI lacks for the platform (msgspec and
# gpiod on armv7) are built from their sdists inside the userland, with its compiler, as a
# board's image build does. Output and caches: build/arm/ (git-ignored).
#
# How ARM code runs: binfmt_misc (registered here when needed) makes the kernel start
# qemu-<arch>-static for ARM binaries, and commands run in a chroot of the userland, so every
# child process (mosquitto, sh, python) is ARM code too. Without binfmt_misc the fallback is
# `qemu-<arch>-static -L ROOTFS`, which emulates only the first program: enough for a benchmark,
# not for the suite (the script says which mode it uses).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

ARCH=${ARCH:-arm64}
BUILD=${ARM_BUILD:-$REPO/build/arm}
SUITE=bookworm
case "$ARCH" in
    arm64) QEMU_ARCH=aarch64; PLATFORM_ARCH=aarch64 ;;
    armhf) QEMU_ARCH=arm; PLATFORM_ARCH=armv7l ;;
    *) echo "arm.sh: ARCH must be arm64 or armhf, not '$ARCH'" >&2; exit 2 ;;
esac
ROOTFS=$BUILD/rootfs-$ARCH
CACHE=$BUILD/cache
DEBS=$CACHE/debs-$ARCH
WHEELS=$CACHE/wheels-$ARCH
SDISTS=$CACHE/sdists
RESULTS=$BUILD/results-$ARCH
GUEST_VENV=/opt/venv
# What the suite needs in the userland besides Python: the broker, the tools of the deployment
# tests (systemd-analyze, shellcheck, start-stop-daemon from dpkg, zbarimg) and a POSIX userland.
PACKAGES="base-files base-passwd bash dash coreutils diffutils findutils grep sed gzip tar
util-linux procps dpkg libc-bin ca-certificates python3 python3-venv mosquitto shellcheck systemd
zbar-tools"
if [ "$ARCH" = armhf ]; then
    PACKAGES="$PACKAGES gcc libc6-dev python3-dev"  # to build the wheels PyPI lacks
fi
# Not built from source under emulation (uvloop bundles libuv: far too slow to build on
# qemu); the agent and the suite run without it (asyncio's loop).
SKIP_BUILD=${ARM_SKIP_BUILD:-uvloop}

log() { printf 'arm.sh[%s]: %s\n' "$ARCH" "$*" >&2; }
now() { date +%s; }

# ------------------------------------------------------------------------- host tools

apt_updated=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq >/dev/null
        apt_updated=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

host_tools() {
    local missing=()
    command -v "qemu-$QEMU_ARCH-static" >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v arch-test >/dev/null || missing+=(arch-test)
    command -v unshare >/dev/null || missing+=(util-linux)
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] || { log "need root to install ${missing[*]}"; exit 1; }
        log "installing ${missing[*]} (apt-get)"
        apt_install "${missing[@]}"
    fi
}

# chroot (binfmt_misc) or qemu-user (-L): which one this machine allows
MODE=""
binfmt() {
    local dir=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-$QEMU_ARCH.conf
    [ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null || true
    if [ ! -e "$dir/qemu-$QEMU_ARCH" ] && [ -w "$dir/register" ] && [ -r "$conf" ]; then
        grep -v '^#' "$conf" >"$dir/register" 2>/dev/null || true
    fi
    if [ "${ARM_MODE:-}" = qemu-user ]; then
        MODE=qemu-user
        log "ARM_MODE=qemu-user: qemu-$QEMU_ARCH-static -L (first program only; suite not run)"
    elif [ -e "$dir/qemu-$QEMU_ARCH" ] && grep -qx enabled "$dir/qemu-$QEMU_ARCH"; then
        MODE=chroot
        log "ARM code runs through binfmt_misc (qemu-$QEMU_ARCH-static) in a chroot"
    else
        MODE=qemu-user
        log "binfmt_misc not available: qemu-$QEMU_ARCH-static -L (first program only; suite not run)"
    fi
}

# shellcheck disable=SC1091  # scripts/debian.sh: mirror()
. scripts/debian.sh

# ---------------------------------------------------------------------------- userland

rootfs() {
    local stamp=$ROOTFS/.cost-agent-rootfs want
    want=$(echo "layout 2 $SUITE $PACKAGES" | tr -s ' \n' ' ')
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    log "building the $ARCH userland ($SUITE) with mmdebstrap"
    rm -rf "$ROOTFS"
    mkdir -p "$DEBS" "$BUILD"
    # --variant=extract: unpack only (no maintainer scripts, a few seconds); the .debs are kept
    # in $DEBS for the next build.
    # shellcheck disable=SC2016  # "$1" is for the hook's shell
    mmdebstrap --variant=extract --arch="$ARCH" --include="$(echo "$PACKAGES" | tr -s ' \n' ',')" \
        --skip=download/empty --skip=cleanup/apt \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook="sync-in $DEBS /var/cache/apt/archives/" \
        "$SUITE" "$ROOTFS" "$(mirror)" </dev/null >"$BUILD/mmdebstrap-$ARCH.log" 2>&1 || {
            tail -n 20 "$BUILD/mmdebstrap-$ARCH.log" >&2; exit 1; }
    find "$ROOTFS/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec mv -f {} "$DEBS/" \;
    rm -rf "$ROOTFS"/var/lib/apt/lists/*
    # what maintainer scripts would have done, as far as the suite cares
    [ -e "$ROOTFS/bin/sh" ] || ln -s dash "$ROOTFS/bin/sh"
    [ -e "$ROOTFS/etc/passwd" ] || cp "$ROOTFS/usr/share/base-passwd/passwd.master" "$ROOTFS/etc/passwd"
    [ -e "$ROOTFS/etc/group" ] || cp "$ROOTFS/usr/share/base-passwd/group.master" "$ROOTFS/etc/group"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' >"$ROOTFS/etc/hosts"
    mkdir -p "$ROOTFS/src" "$ROOTFS/cache" "$ROOTFS/usr/libexec/qemu-binfmt"
    # the interpreter at the path binfmt names, in case it was registered without F (fix-binary)
    cp "$(command -v "qemu-$QEMU_ARCH-static")" "$ROOTFS/usr/bin/"
    ln -sf "../../bin/qemu-$QEMU_ARCH-static" "$ROOTFS/usr/libexec/qemu-binfmt/$QEMU_ARCH-binfmt-P"
    [ "$MODE" != chroot ] || guest /sbin/ldconfig
    # update-ca-certificates' bundle (pip download in the buildroot test verifies PyPI's TLS)
    cat "$ROOTFS"/usr/share/ca-certificates/mozilla/*.crt >"$ROOTFS/etc/ssl/certs/ca-certificates.crt"
    echo "$want" >"$stamp"
}

# Run a command line (sh syntax) in the userland, in /src (the repo), with a private mount
# namespace: the mounts vanish with the command, whatever happens to it.
guest() {
    local cmd="$*"
    # the host's resolver and trust store, as a chroot shares them (this machine reaches PyPI
    # through a TLS proxy whose CA only the host's bundle has: the suite's pip download needs it)
    cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
    [ ! -s /etc/ssl/certs/ca-certificates.crt ] || [ ! -d "$ROOTFS/etc/ssl/certs" ] ||
        cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
    # EVerest's AsyncAPI files (../shared/reference) for the suite's schema tests, read-only
    local ref="$REPO/../shared/reference"
    [ -d "$ref" ] && mkdir -p "$ROOTFS/shared/reference" || ref=""
    if [ "$MODE" = chroot ]; then
        # shellcheck disable=SC2016  # expanded by the inner shell
        unshare --mount --propagation private -- /bin/sh -c '
            set -e
            R=$1 REPO=$2 CACHE=$3 REF=$4; shift 4
            mount --rbind /dev "$R/dev"
            mount -t proc proc "$R/proc"
            mount -t sysfs sysfs "$R/sys"
            mount -t tmpfs tmpfs "$R/tmp"
            mount -t tmpfs tmpfs "$R/run"
            mount --bind "$REPO" "$R/src"
            mount --bind "$CACHE" "$R/cache"
            if [ -n "$REF" ]; then
                mount --bind "$REF" "$R/shared/reference"
                mount -o remount,bind,ro "$R/shared/reference"
            fi
            exec chroot "$R" /usr/bin/env -i PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" COST_AGENT_EXPECT_QEMU_USER=1 \
                PYTHONPYCACHEPREFIX=/root/.cache/pycache /bin/sh -c "cd /src && $1"
        ' sh "$ROOTFS" "$REPO" "$CACHE" "$ref" "$cmd"
    else
        # -L: qemu emulates this one program and nothing it starts, so only `python ARGS...`
        # runs, with the packages installed on the host side (site_install)
        local -a argv
        read -r -a argv <<<"$cmd"
        if [ "${argv[0]}" != python ]; then
            log "qemu-user mode runs python only, not: $cmd"
            return 1
        fi
        (cd "$REPO" && env PYTHONPATH="$REPO:$ROOTFS/opt/site" \
            "qemu-$QEMU_ARCH-static" -L "$ROOTFS" "$ROOTFS/usr/bin/python3.11" "${argv[@]:1}")
    fi
}

requirements() {
    python3 - <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
    print(req)
EOF
}

# build_requires SDIST: its [build-system] requires, one a line
build_requires() {
    python3 - "$1" <<'EOF2'
import sys, tarfile, tomllib
with tarfile.open(sys.argv[1]) as tar:
    member = next(m for m in tar.getmembers() if m.name.count("/") == 1
                  and m.name.endswith("/pyproject.toml"))
    doc = tomllib.load(tar.extractfile(member))
print("\n".join(doc.get("build-system", {}).get("requires", ["setuptools", "wheel"])))
EOF2
}

# has_wheel NAME [VERSION]: a wheel of that distribution is in the cache
has_wheel() {
    local stem
    stem=$(echo "$1" | tr 'A-Z-' 'a-z_')
    compgen -G "$WHEELS/$stem-${2:-*}-*.whl" >/dev/null
}

req_name() { local name=${1%%[<>=!~ ;[]*}; echo "$name"; }

wheels() {
    local stamp=$WHEELS/.cost-agent-wheels want reqs req name missing=() platforms=()
    reqs=$(requirements)
    want=$(printf '%s\n%s' "$reqs" "$SKIP_BUILD")
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    mkdir -p "$WHEELS" "$SDISTS"
    for tag in manylinux2014 manylinux_2_17 manylinux_2_28 manylinux_2_31 manylinux_2_34 \
            manylinux_2_35 manylinux_2_36; do
        platforms+=(--platform "${tag}_$PLATFORM_ARCH")
    done
    log "downloading $PLATFORM_ARCH wheels (pip download --only-binary=:all:)"
    python3 -m pip download -q --disable-pip-version-check -d "$WHEELS" setuptools wheel
    while read -r req; do
        [ -n "$req" ] || continue
        if ! python3 -m pip download -q --disable-pip-version-check --only-binary=:all: \
                "${platforms[@]}" --python-version 3.11 --implementation cp -d "$WHEELS" \
                "$req" >/dev/null 2>&1; then
            missing+=("$req")
        fi
    done <<<"$reqs"
    for req in "${missing[@]}"; do
        name=$(req_name "$req")
        if echo " $SKIP_BUILD " | grep -q " $name "; then
            log "no $PLATFORM_ARCH wheel of $name on PyPI; not built here (ARM_SKIP_BUILD)"
            continue
        fi
        log "no $PLATFORM_ARCH wheel of $name on PyPI: building it from the sdist in the userland"
        # its own dependencies as wheels first, then the sdist itself
        python3 -m pip download -q --disable-pip-version-check --only-binary=:all: \
            "${platforms[@]}" --python-version 3.11 --implementation cp -d "$WHEELS" \
            "$req" --no-deps >/dev/null 2>&1 ||
            python3 -m pip download -q --disable-pip-version-check --no-binary=:all: --no-deps \
                -d "$SDISTS" "$req"
    done
    # the build requirements of those sdists (setuptools, setuptools-scm...), for pip's
    # isolated build in the userland with --no-index
    for sdist in "$SDISTS"/*.tar.gz; do
        [ -e "$sdist" ] || continue
        build_requires "$sdist" | while read -r req; do
            python3 -m pip download -q --disable-pip-version-check --only-binary=:all: \
                "${platforms[@]}" --python-version 3.11 --implementation cp -d "$WHEELS" "$req"
        done
    done
    echo "$want" >"$stamp"
}

venv() {
    local stamp=$ROOTFS$GUEST_VENV/.cost-agent-venv want sdist reqs name install=()
    want=$(cat "$WHEELS/.cost-agent-wheels" pyproject.toml)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    log "installing the project and its dependencies into $GUEST_VENV (pip, in the userland)"
    local pip="python -m pip install -q --disable-pip-version-check --no-index"
    guest "[ -x $GUEST_VENV/bin/python ] || python3 -m venv $GUEST_VENV"
    guest "$pip --upgrade --find-links /cache/${WHEELS##*/} setuptools wheel"
    # wheels missing on PyPI for this platform: build them from the sdists (cached)
    for sdist in "$SDISTS"/*.tar.gz; do
        [ -e "$sdist" ] || continue
        name=$(basename "$sdist" .tar.gz)
        if has_wheel "${name%-*}" "${name##*-}"; then
            continue
        fi
        log "building $name for $PLATFORM_ARCH (gcc under emulation; cached in ${WHEELS#"$REPO"/})"
        local t0; t0=$(now)
        guest "python -m pip wheel -q --disable-pip-version-check --no-index --no-deps \
            --find-links /cache/${WHEELS##*/} -w /cache/${WHEELS##*/} \
            /cache/sdists/$(basename "$sdist")"
        log "built $name in $(( $(now) - t0 )) s"
    done
    guest "$pip --no-build-isolation --find-links /cache/${WHEELS##*/} --no-deps -e /src"
    reqs=$(requirements)
    while read -r req; do
        name=$(req_name "$req")
        if echo " $SKIP_BUILD " | grep -q " $name " && ! has_wheel "$name" ""; then
            log "$name: not installed (no $PLATFORM_ARCH wheel; ARM_SKIP_BUILD)"
            continue
        fi
        install+=("'$req'")
    done <<<"$reqs"
    guest "$pip --find-links /cache/${WHEELS##*/} ${install[*]}"
    echo "$want" >"$stamp"
}

# qemu-user mode: the binary wheels installed by the host's pip into ROOTFS/opt/site
site_install() {
    local reqs req name install=()
    reqs=$(requirements)
    while read -r req; do
        name=$(req_name "$req")
        has_wheel "$name" "" || { log "$name: no $PLATFORM_ARCH wheel, not installed"; continue; }
        install+=("$req")
    done <<<"$reqs"
    python3 -m pip install -q --disable-pip-version-check --no-index --find-links "$WHEELS" \
        --only-binary=:all: --platform "manylinux_2_17_$PLATFORM_ARCH" --python-version 3.11 \
        --implementation cp --upgrade --no-warn-conflicts --target "$ROOTFS/opt/site" "${install[@]}"
}

setup() {
    local t0; t0=$(now)
    host_tools
    binfmt
    rootfs
    wheels
    if [ "$MODE" = chroot ]; then venv; else site_install; fi
    log "userland ready in $(( $(now) - t0 )) s: ${ROOTFS#"$REPO"/}"
}

# ---------------------------------------------------------------------------------- test

# the decode table of two decode.py --json outputs side by side: ratios vs json.loads
compare_decode() {
    python3 - "$@" <<'EOF2'
import json, sys
def load(path):
    try:
        return {r["name"]: r for r in json.load(open(path))["rows"]}
    except (OSError, ValueError, KeyError):
        return {}
native, arm, arch = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
def cell(row, col):
    x = row.get("ratio_vs_json", {}).get(col) if row else None
    return "n/a" if x is None else "%.2fx" % x
def us(row):
    return "n/a" if not row else "%.1f" % (row["ns"]["json"] / 1000)
print("%-18s %-26s %-26s" % ("ratio vs json.loads", "x86_64 decode / full / pyd",
                             arch + " decode / full / pyd"))
for name in native or arm:
    n, a = native.get(name), arm.get(name)
    print("%-18s %-26s %-26s" % (name, " / ".join(cell(n, c) for c in ("decode", "full", "pydantic")),
                                 " / ".join(cell(a, c) for c in ("decode", "full", "pydantic"))))
print("%-18s %-26s %-26s" % ("json.loads us (s_c)", us(native.get("session_cost")),
                             us(arm.get("session_cost"))))
EOF2
}

test_all() {
    local t0 t_setup t_suite t_bench status=0 native_decode=n/a native_fp=n/a arm_decode
    t0=$(now)
    setup
    t_setup=$(( $(now) - t0 ))
    mkdir -p "$RESULTS"
    if [ "$MODE" != chroot ]; then
        log "qemu-user mode: bench/decode.py --check only; the suite and the footprint bench"
        log "start ARM children (mosquitto, the agent) and need binfmt_misc: NOT RUN"
        guest "python bench/decode.py --check"
        exit 1
    fi

    # native figures from this same run, for the table
    if [ -x .venv/bin/python ]; then
        native_decode=passed
        .venv/bin/python bench/decode.py --check --json >"$RESULTS/decode-native.json" ||
            native_decode=FAILED
        .venv/bin/python bench/footprint.py --runs 3 --guest-rss >"$RESULTS/footprint-native.txt" || true
        native_fp=$(grep -m1 '^run 2' "$RESULTS/footprint-native.txt" || true)
    fi

    t0=$(now)
    log "the pytest suite as $ARCH code"
    # per-test timeout x5: a safety net against hangs, and emulated code is several times slower;
    # one pytest-xdist worker (and private broker) per core, the slowest tests listed at the end
    guest "python -m pytest -p no:cacheprovider -rs --timeout=600 -n ${ARM_WORKERS:-auto} \
        --durations=15 ${PYTEST_ARGS:-}" | tee "$RESULTS/pytest.txt" ||
        status=1
    t_suite=$(( $(now) - t0 ))

    t0=$(now)
    log "bench/decode.py --check as $ARCH code"
    arm_decode=passed
    guest "python bench/decode.py --check --json" >"$RESULTS/decode.json" || {
        arm_decode=FAILED; status=1; }
    guest "python bench/footprint.py --runs 3 --guest-rss" | tee "$RESULTS/footprint.txt" ||
        status=1
    t_bench=$(( $(now) - t0 ))

    echo
    echo "== $ARCH (qemu-$QEMU_ARCH-static, $MODE) vs native x86_64, same run =="
    printf '%-34s %s\n' "setup (userland, wheels, venv)" "${t_setup} s"
    printf '%-34s %s\n' "pytest suite" "${t_suite} s: $(grep -E '[0-9]+ (passed|failed)' \
        "$RESULTS/pytest.txt" | tail -n1)"
    printf '%-34s %s\n' "decode + footprint benches" "${t_bench} s"
    echo "decode --check (session_cost: decode <= 0.6x json.loads; natively also full <= 1.2x):" \
        "native $native_decode, $ARCH $arm_decode"
    compare_decode "$RESULTS/decode-native.json" "$RESULTS/decode.json" "$ARCH"
    printf '%-34s %s\n' "footprint (native)" "$native_fp"
    printf '%-34s %s\n' "footprint ($ARCH)" "$(grep -m1 '^run 2' "$RESULTS/footprint.txt" || true)"
    echo "(footprint under qemu: 'idle RSS' is the qemu process, emulator included; 'guest RSS'"
    echo " is the agent's own mappings, see bench/guest_rss.py)"
    return "$status"
}

case "${1:-}" in
    setup) setup ;;
    run) shift; setup >&2; guest "$@" ;;
    test) test_all ;;
    *) echo "usage: [ARCH=arm64|armhf] $0 setup | run CMD... | test" >&2; exit 2 ;;
esac
