#!/usr/bin/env bash
# A private ejabberd (Debian package) on 127.0.0.1 for cubechat-core's XMPP tests.
#
#   scripts/ejabberd.sh install               # apt install (needs root), idempotent
#   scripts/ejabberd.sh start DIR [USER:PW]…  # start on free ports, register users
#   scripts/ejabberd.sh ctl DIR ARGS…        # ejabberdctl of that instance (e.g. kick_session)
#   scripts/ejabberd.sh stop DIR
#
# Wraps ../shared/bench/ejabberd/{install,start,stop,ctl}.sh beside the repository (override
# with EJD_BENCH).
# `start` picks free loopback ports, uses DIR/run and a private /dev/shm spool, a private
# node name, no bench users (EJD_USERS=0) and no MAM, registers USER:PW on domain
# localhost (e.g. 5-7:pw5 so the SDK's {userId}-{appId} JIDs work unchanged), and writes
# DIR/env (EJD_C2S_PORT, EJD_C2S_TLS_PORT, EJD_CA_FILE, …; $EJD_RUN/crt.pem is the CA to trust).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="${EJD_BENCH:-$HERE/../../shared/bench/ejabberd}"
cmd="${1:-}"; shift || true

free_ports() {
    if ! command -v python3 >/dev/null; then
        # Fallback: random ports nobody listens on (a small race, fine for tests).
        local out=() p
        while [ ${#out[@]} -lt "$1" ]; do
            p=$((20000 + RANDOM % 40000))
            ss -Hltn "sport = :$p" | grep -q . || case " ${out[*]} " in *" $p "*) ;; *) out+=("$p") ;; esac
        done
        echo "${out[*]}"; return
    fi
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

case "$cmd" in
install)
    exec "$BENCH/install.sh" ;;
start)
    dir="${1:?usage: ejabberd.sh start DIR [USER:PW]...}"; shift
    mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
    read -r c2s tls http https dist <<<"$(free_ports 5)"
    tag="cc$$$(date +%N | cut -c1-4)"
    export EJD_RUN="$dir/run" EJD_SPOOL="/dev/shm/cubechat-ejd-$tag" EJD_NODE="$tag@localhost"
    export EJD_C2S_PORT=$c2s EJD_C2S_TLS_PORT=$tls EJD_HTTP_PORT=$http EJD_HTTPS_PORT=$https EJD_DIST_PORT=$dist
    export EJD_USERS=0 EJD_MAM=off EJD_DOMAIN=localhost
    cat > "$dir/env" <<ENV
export EJD_RUN='$EJD_RUN' EJD_SPOOL='$EJD_SPOOL' EJD_NODE='$EJD_NODE' EJD_DOMAIN=localhost
export EJD_C2S_PORT=$c2s EJD_C2S_TLS_PORT=$tls EJD_HTTP_PORT=$http EJD_HTTPS_PORT=$https EJD_DIST_PORT=$dist
export EJD_USERS=0 EJD_MAM=off EJD_CA_FILE='$EJD_RUN/crt.pem'
ENV
    # start.sh makes a self-signed certificate with openssl's default CA:TRUE extensions,
    # which webpki (rustls) refuses as a server certificate (CaUsedAsEndEntity). An openssl
    # config whose x509 extensions describe a server (leaf) certificate fixes that; the
    # self-signed leaf ($EJD_RUN/crt.pem) is then trusted as the extra CA.
    mkdir -p "$dir/ssl"
    cat > "$dir/ssl/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
x509_extensions = leaf
[dn]
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
CNF
    OPENSSL_CONF="$dir/ssl/openssl.cnf" "$BENCH/start.sh" >&2
    # mod_admin_extra gives tests kick_session (a session that cannot be resumed).
    sed -i 's/^modules:$/modules:\n  mod_admin_extra: {}/' "$EJD_RUN/ejabberd.yml"
    "$BENCH/ctl.sh" reload_config >/dev/null
    for up in "$@"; do
        user="${up%%:*}"; pw="${up#*:}"
        code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' \
            -H 'Content-Type: application/json' \
            -d "{\"user\":\"$user\",\"host\":\"localhost\",\"password\":\"$pw\"}" \
            "http://127.0.0.1:$http/api/register")
        [ "$code" = 200 ] || { echo "ejabberd.sh: registering $user failed ($code)" >&2; exit 1; }
    done
    echo "$dir/env" ;;
ctl)
    dir="${1:?usage: ejabberd.sh ctl DIR ARGS...}"; shift
    # shellcheck disable=SC1091
    source "$dir/env"
    exec "$BENCH/ctl.sh" "$@" ;;
stop)
    dir="${1:?usage: ejabberd.sh stop DIR}"
    [ -f "$dir/env" ] || exit 0
    # shellcheck disable=SC1091
    source "$dir/env"
    "$BENCH/stop.sh" || true
    case "$EJD_SPOOL" in /dev/shm/cubechat-ejd-*) rm -rf "$EJD_SPOOL" ;; esac ;;
*)
    echo "usage: ejabberd.sh install | start DIR [USER:PW]... | ctl DIR ARGS... | stop DIR" >&2; exit 2 ;;
esac
