# Copied from the project's peer-benchmark kit (cubechat: bench/README.md).
# Sourced by start.sh / stop.sh / ctl.sh. Every value can be overridden from
# the environment. Nothing here touches the system ejabberd (node
# ejabberd@localhost, /var/lib/ejabberd, ports 5222/5269/5280/5443).
EJD_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${EJD_RUN:=${BENCH_WORK:-/tmp/cubechat-bench}/ejabberd}" # private run dir: config, cert, logs (wiped by start.sh)
: "${EJD_SPOOL:=/dev/shm/cubechat-bench-ejabberd}"  # Mnesia + SQLite data, in memory (wiped by start.sh)
: "${EJD_MAM:=sql}"                              # MAM archive backend: sql (SQLite, WAL) | mnesia | off
: "${EJD_NODE:=bench@localhost}"                 # private Erlang node name
: "${EJD_DIST_PORT:=15290}"                      # fixed distribution port, no epmd
: "${EJD_C2S_PORT:=15222}"                       # c2s, STARTTLS required
: "${EJD_C2S_TLS_PORT:=15223}"                   # c2s, direct TLS (XEP-0368 style)
: "${EJD_HTTP_PORT:=15280}"                      # ws://, BOSH, REST API (loopback)
: "${EJD_HTTPS_PORT:=15443}"                     # wss://, BOSH over TLS
: "${EJD_DOMAIN:=localhost}"
: "${EJD_USERS:=200}"                            # creates u1..uN
: "${EJD_USER_PREFIX:=u}"
: "${EJD_CC_USERS:=0}"                           # also creates cubechat's 1-APP..N-APP (JIDs {id}-{app})
: "${EJD_CC_APP:=7}"
: "${EJD_PASSWORD:=pw}"
: "${EJD_USER_METHOD:=api}"                      # api (one curl, keep-alive) | ctl (one ejabberdctl per user)

# Erlang VM flags. The schedulers' busy-wait (default +sbwt medium) burns
# CPU while idle between bursts: it inflates the server CPU figure and, on a
# 2-core box, steals cycles from the client under test. Off by default here;
# EJD_ERL_FLAGS="" gives Erlang's defaults.
: "${EJD_ERL_FLAGS=+sbwt none +sbwtdcpu none +sbwtdio none}"

ejd_ctl() {
    # ejabberdctl, pointed at the private node/config/spool. As root it runs
    # the VM as the 'ejabberd' system user (su), so the Erlang cookie used is
    # /var/lib/ejabberd/.erlang.cookie (created on first start).
    /usr/sbin/ejabberdctl \
        --config-dir "$EJD_RUN" \
        --config "$EJD_RUN/ejabberd.yml" \
        --ctl-config "$EJD_RUN/ejabberdctl.cfg" \
        --logs "$EJD_RUN/logs" \
        --spool "$EJD_SPOOL" \
        --node "$EJD_NODE" \
        "$@"
}

ejd_pid() {
    local p
    p="$(cat "$EJD_RUN/ejabberd.pid" 2>/dev/null)" || return 1
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}

ejd_now() { date +%s.%N; }
ejd_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}'; }
