#!/usr/bin/env bash
# A private ejabberd (Debian package) on 127.0.0.1 for cubechat-core's XMPP tests. Everything it
# uses ships in this repository (scripts/ejabberd/ejabberd.yml); nothing outside the clone is read.
#
#   scripts/ejabberd.sh install               # apt install (needs root), idempotent, never starts
#                                             # the system service
#   scripts/ejabberd.sh start DIR [USER:PW]…  # a new instance in DIR on free loopback ports,
#                                             # USER:PW registered on domain localhost
#   scripts/ejabberd.sh ctl DIR ARGS…        # ejabberdctl of that instance (e.g. kick_session)
#   scripts/ejabberd.sh stop DIR              # stops it (by its pid file) and removes its spool
#
# `start` writes DIR/env (EJD_C2S_PORT, EJD_C2S_TLS_PORT, EJD_HTTP_PORT, EJD_CA_FILE, …):
# EJD_CA_FILE is the instance's self-signed leaf certificate (localhost, 127.0.0.1) to trust.
# Users are given as `5-7:pw5` so the SDK's {userId}-{appId} JIDs work unchanged.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="$HERE/ejabberd/ejabberd.yml"
EJABBERDCTL=/usr/sbin/ejabberdctl
cmd="${1:-}"; shift || true

free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# ejabberdctl pointed at the instance described by DIR/env. As root it runs the Erlang VM as
# the `ejabberd` system user.
ctl() {
    "$EJABBERDCTL" --config-dir "$EJD_RUN" --config "$EJD_RUN/ejabberd.yml" \
        --ctl-config "$EJD_RUN/ejabberdctl.cfg" --logs "$EJD_RUN/logs" \
        --spool "$EJD_SPOOL" --node "$EJD_NODE" "$@"
}

pid_of() {
    local p
    p="$(cat "$EJD_RUN/ejabberd.pid" 2>/dev/null)" || return 1
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}

stop_instance() {
    local p
    if p=$(pid_of); then
        # SIGTERM makes the VM run init:stop() (a clean shutdown in ~3 s).
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    fi
    case "$EJD_SPOOL" in /dev/shm/cubechat-ejd-*) rm -rf "$EJD_SPOOL" ;; esac
}

case "$cmd" in
install)
    if [ -x "$EJABBERDCTL" ]; then exit 0; fi
    [ "$(id -u)" = 0 ] || { echo "ejabberd.sh: installing ejabberd needs root (apt-get)" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    # Keep apt from starting the system service (ejabberd@localhost on 0.0.0.0:5222…).
    tmp_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
        tmp_policy=1
    fi
    apt-get -o DPkg::Lock::Timeout=120 update -q >/dev/null
    apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends \
        ejabberd openssl curl >/dev/null
    [ -z "$tmp_policy" ] || rm -f /usr/sbin/policy-rc.d
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now ejabberd >/dev/null 2>&1 || true
    fi
    echo "ejabberd.sh: ejabberd $(dpkg-query -W -f='${Version}' ejabberd) installed" >&2 ;;
start)
    dir="${1:?usage: ejabberd.sh start DIR [USER:PW]...}"; shift
    [ -x "$EJABBERDCTL" ] || { echo "ejabberd.sh: ejabberd is not installed (scripts/ejabberd.sh install)" >&2; exit 1; }
    mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
    read -r c2s tls http dist <<<"$(free_ports 4)"
    tag="cc$$$(date +%N | cut -c1-4)"
    EJD_RUN="$dir/run" EJD_SPOOL="/dev/shm/cubechat-ejd-$tag" EJD_NODE="$tag@localhost"
    cat > "$dir/env" <<ENV
export EJD_RUN='$EJD_RUN' EJD_SPOOL='$EJD_SPOOL' EJD_NODE='$EJD_NODE' EJD_DOMAIN=localhost
export EJD_C2S_PORT=$c2s EJD_C2S_TLS_PORT=$tls EJD_HTTP_PORT=$http EJD_DIST_PORT=$dist
export EJD_CA_FILE='$EJD_RUN/crt.pem'
ENV
    rm -rf "$EJD_RUN" "$EJD_SPOOL"
    mkdir -p "$EJD_RUN/logs" "$EJD_SPOOL"
    # A self-signed server (leaf) certificate: CA:FALSE, serverAuth. webpki (rustls) refuses a
    # CA certificate used as an end entity, which openssl's defaults would make.
    cat > "$EJD_RUN/openssl.cnf" <<'CNF'
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
    OPENSSL_CONF="$EJD_RUN/openssl.cnf" openssl req -x509 -newkey ec \
        -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1" \
        -keyout "$EJD_RUN/key.pem" -out "$EJD_RUN/crt.pem" 2>/dev/null
    cat "$EJD_RUN/crt.pem" "$EJD_RUN/key.pem" > "$EJD_RUN/cert.pem"
    sed -e "s#@RUN@#$EJD_RUN#g" -e "s#@DOMAIN@#localhost#g" -e "s#@C2S_PORT@#$c2s#g" \
        -e "s#@C2S_TLS_PORT@#$tls#g" -e "s#@HTTP_PORT@#$http#g" "$TEMPLATE" > "$EJD_RUN/ejabberd.yml"
    # localhost resolves without DNS; Erlang distribution on a fixed loopback port, no epmd.
    printf '{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n' > "$EJD_RUN/inetrc"
    cat > "$EJD_RUN/ejabberdctl.cfg" <<CFG
ERLANG_NODE=$EJD_NODE
ERL_DIST_PORT=$dist
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none"
EJABBERD_PID_PATH=$EJD_RUN/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
CFG
    if id ejabberd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        chown -R ejabberd:ejabberd "$EJD_RUN" "$EJD_SPOOL"
    fi
    chmod 755 "$EJD_RUN"; chmod 644 "$EJD_RUN/crt.pem"; chmod 600 "$EJD_RUN/key.pem" "$EJD_RUN/cert.pem"
    ctl start
    ready=""
    for _ in $(seq 1 300); do   # <= 30 s
        if (exec 3<>"/dev/tcp/127.0.0.1/$c2s") 2>/dev/null \
           && (exec 3<>"/dev/tcp/127.0.0.1/$http") 2>/dev/null; then ready=1; break; fi
        # the VM halts when the configuration is rejected: fail fast
        if [ -s "$EJD_RUN/ejabberd.pid" ] && ! pid_of >/dev/null; then break; fi
        sleep 0.1
    done
    if [ -z "$ready" ]; then
        echo "ejabberd.sh: ejabberd did not open port $c2s; log:" >&2
        tail -n 30 "$EJD_RUN/logs/ejabberd.log" "$EJD_RUN/logs/error.log" >&2 2>/dev/null || true
        stop_instance
        exit 1
    fi
    for up in "$@"; do
        user="${up%%:*}"; pw="${up#*:}"
        code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' \
            -H 'Content-Type: application/json' \
            -d "{\"user\":\"$user\",\"host\":\"localhost\",\"password\":\"$pw\"}" \
            "http://127.0.0.1:$http/api/register")
        [ "$code" = 200 ] || { echo "ejabberd.sh: registering $user failed ($code)" >&2; stop_instance; exit 1; }
    done
    echo "$dir/env" ;;
ctl)
    dir="${1:?usage: ejabberd.sh ctl DIR ARGS...}"; shift
    # shellcheck disable=SC1091
    source "$dir/env"
    ctl "$@" ;;
stop)
    dir="${1:?usage: ejabberd.sh stop DIR}"
    [ -f "$dir/env" ] || exit 0
    # shellcheck disable=SC1091
    source "$dir/env"
    stop_instance ;;
*)
    echo "usage: ejabberd.sh install | start DIR [USER:PW]... | ctl DIR ARGS... | stop DIR" >&2; exit 2 ;;
esac
