#!/usr/bin/env bash
# Start a private ejabberd on loopback for benchmarks and create test users.
#
#   bench/ejabberd/start.sh            # install if needed, start, create u1..u200 / pw
#   EJD_USERS=50 EJD_RUN=/dev/shm/ejd bench/ejabberd/start.sh
#
# Wipes $EJD_RUN (config copy, cert, logs) and $EJD_SPOOL (Mnesia + SQLite,
# in /dev/shm) each time, so every start is a fresh database. Writes $EJD_RUN/env.sh (ports, pid, cert path) for benchmark
# scripts and prints one JSON line with the timings on stdout.
# Needs root (apt, and ejabberdctl runs the VM as the 'ejabberd' user).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

t_all=$(ejd_now)
if [ ! -x /usr/sbin/ejabberdctl ] || ! compgen -G '/usr/lib/erlang/lib/p1_sqlite3-*' >/dev/null; then
    "$EJD_HERE/install.sh"
fi
t_install=$(ejd_since "$t_all")

# An earlier instance of ours? Stop it first (never touches other nodes).
if ejd_pid >/dev/null; then "$EJD_HERE/stop.sh"; fi
for port in "$EJD_C2S_PORT" "$EJD_C2S_TLS_PORT" "$EJD_HTTP_PORT" "$EJD_HTTPS_PORT" "$EJD_DIST_PORT"; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        echo "start.sh: port $port is already in use:" >&2
        ss -ltnp "sport = :$port" >&2
        exit 1
    fi
done

t_start=$(ejd_now)
for d in "$EJD_RUN" "$EJD_SPOOL"; do
    case "$d" in /|/tmp|/dev/shm|/var|/var/*|/etc*|/usr*|/home|/root|"") echo "start.sh: refusing to wipe $d" >&2; exit 1;; esac
done
rm -rf "$EJD_RUN" "$EJD_SPOOL"
mkdir -p "$EJD_RUN/logs" "$EJD_SPOOL"

# A CA and a server (leaf) certificate it signed, for localhost (+ *.localhost for
# muc.localhost) and 127.0.0.1, P-256. Clients trust ca.pem. (rustls/webpki refuses a CA
# certificate used as the server's own, which a plain `openssl req -x509` makes.)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 3650 -subj "/CN=cubechat bench CA" \
    -keyout "$EJD_RUN/ca.key" -out "$EJD_RUN/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$EJD_DOMAIN" -keyout "$EJD_RUN/key.pem" -out "$EJD_RUN/leaf.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s,DNS:*.%s,IP:127.0.0.1\n' \
    "$EJD_DOMAIN" "$EJD_DOMAIN" > "$EJD_RUN/leaf.ext"
openssl x509 -req -in "$EJD_RUN/leaf.csr" -CA "$EJD_RUN/ca.pem" -CAkey "$EJD_RUN/ca.key" \
    -CAcreateserial -days 3650 -extfile "$EJD_RUN/leaf.ext" -out "$EJD_RUN/crt.pem" 2>/dev/null
cat "$EJD_RUN/crt.pem" "$EJD_RUN/key.pem" > "$EJD_RUN/cert.pem"

sed -e "s#@RUN@#$EJD_RUN#g" \
    -e "s#@SPOOL@#$EJD_SPOOL#g" \
    -e "s/port: 15222\$/port: $EJD_C2S_PORT/" \
    -e "s/port: 15223\$/port: $EJD_C2S_TLS_PORT/" \
    -e "s/port: 15280\$/port: $EJD_HTTP_PORT/" \
    -e "s/port: 15443\$/port: $EJD_HTTPS_PORT/" \
    -e "s/^  - localhost\$/  - $EJD_DOMAIN/" \
    "$EJD_HERE/ejabberd.yml" > "$EJD_RUN/ejabberd.yml"
case "$EJD_MAM" in
    sql)
        # Create the SQLite schema ourselves so that the DB is in WAL mode
        # (persistent per file); ejabberd would create it in rollback-journal
        # mode, which costs a journal create+delete per archived message.
        sqlschema=$(ls /usr/lib/*/ejabberd-*/priv/sql/lite.sql 2>/dev/null | head -n 1)
        if [ -n "$sqlschema" ] && command -v python3 >/dev/null; then
            python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.executescript(open(sys.argv[2]).read())
c.execute("PRAGMA journal_mode=WAL"); c.close()' "$EJD_SPOOL/ejabberd.db" "$sqlschema"
        fi ;;
    mnesia)
        sed -i '/^  mod_mam:/,/^  mod_muc:/s/db_type: sql/db_type: mnesia/' "$EJD_RUN/ejabberd.yml" ;;
    off)
        sed -i '/^  mod_mam:/,/^  mod_muc:/{/^  mod_muc:/!d}' "$EJD_RUN/ejabberd.yml" ;;
    *) echo "start.sh: EJD_MAM must be sql, mnesia or off" >&2; exit 1 ;;
esac

# Erlang resolver config (ERL_INETRC): localhost -> 127.0.0.1, no DNS.
printf '{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n' > "$EJD_RUN/inetrc"

# ejabberdctl settings. ERL_DIST_PORT makes the node listen for Erlang
# distribution on that fixed port and skip epmd entirely (epmd would listen
# on 0.0.0.0:4369); inet_dist_use_interface keeps that port on 127.0.0.1.
cat > "$EJD_RUN/ejabberdctl.cfg" <<CFG
ERLANG_NODE=$EJD_NODE
ERL_DIST_PORT=$EJD_DIST_PORT
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -kernel inet_dist_use_interface {127,0,0,1} $EJD_ERL_FLAGS"
EJABBERD_PID_PATH=$EJD_RUN/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
CFG
chown -R ejabberd:ejabberd "$EJD_RUN" "$EJD_SPOOL"
chmod 755 "$EJD_RUN"; chmod 644 "$EJD_RUN/crt.pem" "$EJD_RUN/ca.pem"; chmod 600 "$EJD_RUN/key.pem" "$EJD_RUN/cert.pem"

# 1000+ client connections need more file descriptors than 1024, the soft limit that
# ejabberdctl's `su` (PAM) leaves the VM. As root, start the VM as the ejabberd user through
# setpriv (no PAM: the raised limit stays), which makes ejabberdctl exec erl directly.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id ejabberd >/dev/null 2>&1; then
    (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
     cd "$EJD_SPOOL"
     setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
         env HOME=/var/lib/ejabberd USER=ejabberd LOGNAME=ejabberd /usr/sbin/ejabberdctl \
         --config-dir "$EJD_RUN" --config "$EJD_RUN/ejabberd.yml" \
         --ctl-config "$EJD_RUN/ejabberdctl.cfg" --logs "$EJD_RUN/logs" \
         --spool "$EJD_SPOOL" --node "$EJD_NODE" start)
else
    ejd_ctl start
fi

# Ready when the c2s and HTTP ports accept (listeners start after the modules).
ready=""
for _ in $(seq 1 300); do   # <= 30 s
    if (exec 3<>"/dev/tcp/127.0.0.1/$EJD_C2S_PORT") 2>/dev/null \
       && (exec 3<>"/dev/tcp/127.0.0.1/$EJD_HTTP_PORT") 2>/dev/null; then ready=1; break; fi
    # the VM halts when the config is rejected: fail fast
    if [ -s "$EJD_RUN/ejabberd.pid" ] && ! ejd_pid >/dev/null; then break; fi
    if grep -qs critical "$EJD_RUN/logs/error.log"; then break; fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "start.sh: ejabberd did not open port $EJD_C2S_PORT; log:" >&2
    tail -n 20 "$EJD_RUN/logs/ejabberd.log" >&2 || true
    "$EJD_HERE/stop.sh" >/dev/null 2>&1 || true
    exit 1
fi
t_start=$(ejd_since "$t_start")

t_users=$(ejd_now)
created=0
if [ "$EJD_USERS" -gt 0 ]; then
    if [ "$EJD_USER_METHOD" = api ]; then
        # One curl process, one keep-alive connection, N POST /api/register
        # (mod_http_api, allowed from 127.0.0.0/8 only; see api_permissions).
        cfg="$EJD_RUN/register.curl"
        : > "$cfg"
        names=$(seq -f "$EJD_USER_PREFIX%g" 1 "$EJD_USERS")
        # cubechat's JIDs are {user_id}-{app_id}: 1-7 .. N-7 (EJD_CC_USERS, EJD_CC_APP)
        [ "$EJD_CC_USERS" -gt 0 ] && names="$names $(seq -f "%g-$EJD_CC_APP" 1 "$EJD_CC_USERS")"
        first=1
        for name in $names; do
            [ -z "$first" ] && echo 'next' >> "$cfg"
            first=""
            printf 'url = "http://127.0.0.1:%s/api/register"\nheader = "Content-Type: application/json"\ndata = "{\\"user\\":\\"%s\\",\\"host\\":\\"%s\\",\\"password\\":\\"%s\\"}"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
                "$EJD_HTTP_PORT" "$name" "$EJD_DOMAIN" "$EJD_PASSWORD" >> "$cfg"
        done
        created=$(curl -sS --max-time 120 -K "$cfg" | grep -c '^200$' || true)
    else
        for i in $(seq 1 "$EJD_USERS"); do
            ejd_ctl register "$EJD_USER_PREFIX$i" "$EJD_DOMAIN" "$EJD_PASSWORD" >/dev/null && created=$((created+1))
        done
    fi
    if [ "$created" -ne $((EJD_USERS + EJD_CC_USERS)) ]; then
        echo "start.sh: created only $created of $((EJD_USERS + EJD_CC_USERS)) users (method $EJD_USER_METHOD)" >&2
        exit 1
    fi
fi
t_users=$(ejd_since "$t_users")

pid=$(ejd_pid)
cat > "$EJD_RUN/env.sh" <<ENV
export EJD_RUN='$EJD_RUN' EJD_SPOOL='$EJD_SPOOL' EJD_NODE='$EJD_NODE' EJD_DOMAIN='$EJD_DOMAIN'
export EJD_MAM='$EJD_MAM'
export EJD_C2S_PORT=$EJD_C2S_PORT EJD_C2S_TLS_PORT=$EJD_C2S_TLS_PORT
export EJD_HTTP_PORT=$EJD_HTTP_PORT EJD_HTTPS_PORT=$EJD_HTTPS_PORT
export EJD_USERS=$EJD_USERS EJD_USER_PREFIX='$EJD_USER_PREFIX' EJD_PASSWORD='$EJD_PASSWORD'
export EJABBERD_PID=$pid
export EJD_CA_FILE='$EJD_RUN/ca.pem'
ENV
t_all=$(ejd_since "$t_all")
json="{\"ejabberd\":\"$(dpkg-query -W -f='${Version}' ejabberd)\",\"pid\":$pid,\"install_s\":$t_install,\"start_s\":$t_start,\"users\":$created,\"user_method\":\"$EJD_USER_METHOD\",\"mam\":\"$EJD_MAM\",\"users_s\":$t_users,\"total_s\":$t_all}"
echo "$json" > "$EJD_RUN/timings.json"
echo "$json"
