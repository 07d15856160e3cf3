# shellcheck shell=bash
# Sourced by scripts/arm.sh and scripts/boot.sh (which define `log`).

# mirror: the host's own Debian mirror (its apt sources), unless DEBIAN_MIRROR is set
mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 !~ /security/ && $2 ~ /^http/ {print $2; exit}' \
        /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || { log "no Debian mirror in the apt sources: set DEBIAN_MIRROR"; exit 1; }
    echo "$uri"
}
