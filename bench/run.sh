#!/usr/bin/env bash
# `make bench`: cubechat (Rust API and Python package) against the peer XMPP clients xmpp.js and
# slixmpp on a private, loopback-only ejabberd, plus memory, reconnection, library size and the
# local store benchmark. Writes bench/RESULTS.md (bench/report.py) and the raw JSON lines
# (bench/results/raw.jsonl). A report, never a timed test: nothing here passes or fails on a figure.
#
#   bench/run.sh                  # RUNS=3, full counts (needs root: apt, ejabberd's user)
#   QUICK=1 bench/run.sh          # smoke run (1 run, small counts; RESULTS.md under $BENCH_WORK)
#   RUNS=5 bench/run.sh           # more runs (medians)
#
# Per run (interleaved, program order rotated per run): a fresh ejabberd (MAM off, empty
# database, u1..u54 for the peers and 1-7..60-7 for cubechat), then each program after waiting
# for the machine to be quiet: xmpp.js, slixmpp, cubechat Rust (store in a file), cubechat Rust
# (store in memory, the default), cubechat Python (release library, store in a file). Each is
# bounded by `timeout`. Everything downloaded or built outside target/ goes to $BENCH_WORK.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
: "${BENCH_WORK:=$ROOT/build/bench}"
: "${RUNS:=3}"
: "${PEER_TIMEOUT:=300}"     # hard limit per benchmark process (seconds)
: "${QUIET_WAIT:=30}"        # wait up to N s for the machine to be < QUIET_PCT busy before each program
: "${QUIET_PCT:=20}"
: "${CARGO_TARGET_DIR:=$ROOT/target}"
ARGS="--connect-n 50 --msgs 20000 --window 1000 --rtt-n 1000"
MEM_CLIENTS="1,100,1000"
CUTS=20
STORE_ARGS="--dialogs 10000 --messages 1000000 --reps 10 --cold-reps 3"
if [ -n "${QUICK:-}" ]; then
    RUNS=1
    ARGS="--connect-n 10 --msgs 2000 --window 1000 --rtt-n 200"
    MEM_CLIENTS="1,100"
    CUTS=5
    STORE_ARGS="--dialogs 1000 --messages 20000 --reps 5 --cold-reps 1"
fi
PROGRAMS="xmppjs slixmpp cubechat-rust-store cubechat-rust cubechat-python"
export BENCH_WORK CARGO_TARGET_DIR EJD_MAM=off EJD_USERS=54 EJD_CC_APP=7
export EJD_RUN="$BENCH_WORK/ejabberd"
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: needs root (apt, ejabberd's system user)" >&2; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
t_all=$(now)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$BENCH_WORK/results/$stamp"
mkdir -p "$out"
raw="$out/raw.jsonl"
: > "$raw"
echo "bench: results in $out" >&2
record() { python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), separators=(",",":")))' "$1" >> "$raw"; }

# ---- install and build ------------------------------------------------------------------
t=$(now)
"$BENCH/ejabberd/install.sh" 2> >(tee -a "$out/setup.log" >&2)
"$BENCH/peers/setup.sh" > "$out/peers-setup.json"
t_install=$(since "$t")

t=$(now)
cd "$ROOT"
# The Rust bench program and the shipped library: release profile as shipped, no test hooks.
cargo build -q --release -p cubechat-bench
cargo rustc -q --release -p cubechat-ffi --lib --crate-type cdylib
LIB="$CARGO_TARGET_DIR/release/libcubechat.so"
# Python bindings are generated from the unstripped library by uniffi-bindgen (dev profile,
# the feature set `make build` uses, so it is shared with the rest of the build).
BINDGEN="$CARGO_TARGET_DIR/debug/uniffi-bindgen"
[ -x "$BINDGEN" ] || cargo build -q -p cubechat-ffi --bin uniffi-bindgen \
    --features cubechat-ffi/test-hooks,cubechat-ffi/bindgen
PY="$BENCH_WORK/py"
rm -rf "$PY" && mkdir -p "$PY/cubechat/cubechat"
cp bindings/cubechat/*.py bindings/cubechat/py.typed "$PY/cubechat/"
"$BINDGEN" generate "$LIB" --language python --no-format --out-dir "$PY/cubechat/cubechat" >/dev/null
echo 'from .cubechat import *  # NOQA' > "$PY/cubechat/cubechat/__init__.py"
strip --strip-unneeded -o "$PY/cubechat/cubechat/libcubechat.so" "$LIB"
t_build=$(since "$t")
wheel=$(ls build/wheel-release/cubechat-*.whl 2>/dev/null | head -n 1 || true)
record "{\"peer\":\"sizes\",\"cdylib_bytes\":$(stat -c %s "$LIB"),\"cdylib_stripped_bytes\":$(stat -c %s "$PY/cubechat/cubechat/libcubechat.so"),\"wheel\":\"$(basename "${wheel:-}")\",\"wheel_bytes\":$([ -n "$wheel" ] && stat -c %s "$wheel" || echo null)}"

# ---- the machine and the versions -------------------------------------------------------
VPY="$BENCH_WORK/venv/bin/python"
python3 - "$out/env.json" <<PY
import json, os, platform, subprocess, sys
def run(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
env = {
    "date": run("date", "-u", "+%Y-%m-%dT%H:%M:%SZ"), "cores": os.cpu_count(), "cpu": cpu,
    "mem_gib": round(mem / 1048576), "kernel": platform.release(),
    "os": run("sh", "-c", ". /etc/os-release && echo \$PRETTY_NAME"),
    "ejabberd": run("dpkg-query", "-W", "-f=\${Version}", "ejabberd"),
    "erlang": run("dpkg-query", "-W", "-f=\${Version}", "erlang-base"),
    "rustc": run("rustc", "-V"), "node": run("node", "--version"),
    "python": run("$VPY", "-V"),
    "slixmpp": run("$VPY", "-c", "import slixmpp; print(slixmpp.__version__)"),
    "commit": run("git", "-C", "$ROOT", "rev-parse", "--short", "HEAD"),
    "settings": {"runs": $RUNS, "args": "$ARGS", "quick": bool("${QUICK:-}"), "server_mam": "off",
                 "client_sm": "on", "memory_clients": "$MEM_CLIENTS", "cuts": $CUTS,
                 "store_bench": "$STORE_ARGS"},
}
json.dump(env, open(sys.argv[1], "w"), indent=1)
PY

# ---- runs ------------------------------------------------------------------------------------
prog_cmd() {
    case "$1" in
        xmppjs) echo "node $BENCH/peers/xmppjs_bench.mjs --sm on" ;;
        slixmpp) echo "$VPY $BENCH/peers/slixmpp_bench.py --sm on" ;;
        cubechat-rust-store) echo "$CARGO_TARGET_DIR/release/cubechat-bench --store on" ;;
        cubechat-rust) echo "$CARGO_TARGET_DIR/release/cubechat-bench --store off" ;;
        cubechat-python) echo "$VPY $BENCH/python/cubechat_bench.py --store on" ;;
        *) echo "unknown program $1" >&2; return 1 ;;
    esac
}
busy_pct() {   # % of all cores busy over the next second (/proc/stat)
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    echo "$a $b" | awk '{d=$4-$2; print (d>0) ? int(100*($3-$1)/d) : 0}'
}
wait_quiet() { # bounded: at most QUIET_WAIT seconds
    local waited=0 b
    while :; do
        b=$(busy_pct)
        if [ "$b" -le "$QUIET_PCT" ] || [ "$waited" -ge "$QUIET_WAIT" ]; then echo "$b"; return; fi
        waited=$((waited + 1))
    done
}
start_server() {   # a fresh ejabberd with $1 cubechat users
    EJD_CC_USERS="$1" "$BENCH/ejabberd/start.sh" >> "$out/ejabberd-start.jsonl"
    # shellcheck disable=SC1091
    source "$EJD_RUN/env.sh"
}
# One program: its last JSON line, with what the driver knows added.
run_prog() {  # name run extra-args...
    local name=$1 run=$2; shift 2
    local load rc cmd tw
    tw=$(now)
    load=$(wait_quiet)
    tw=$(since "$tw")
    echo "bench: run $run/$RUNS $name (machine ${load}% busy before)" >&2
    cmd=$(prog_cmd "$name")
    set +e
    # shellcheck disable=SC2086
    NODE_EXTRA_CA_CERTS="$EJD_CA_FILE" XMPPJS_NODE_MODULES="$BENCH_WORK/node/node_modules" \
    PYTHONPATH="$PY" timeout -k 5 "$PEER_TIMEOUT" $cmd "$@" \
        > "$out/$name.$run.out" 2> "$out/$name.$run.err"
    rc=$?
    set -e
    python3 - "$out/$name.$run.out" "$name" "$run" "$rc" "$load" "$tw" >> "$raw" <<'PY'
import json, sys
path, name, run, rc, load, waited = sys.argv[1:]
rec = None
for line in reversed(open(path).read().splitlines()):
    try:
        rec = json.loads(line)
        break
    except ValueError:
        continue
if rec is None:
    rec = {"error": f"no JSON output (exit {rc}); see {path[:-4]}.err"}
elif rc != "0" and "error" not in rec:
    rec["error"] = f"exit {rc}"
rec.update(peer=name, run=int(run), busy_pct_before=int(load), quiet_wait_s=float(waited),
           server_mam="off")
print(json.dumps(rec, separators=(",", ":")))
PY
    tail -n 1 "$raw" | cut -c1-300 >&2
}

trap '"$BENCH/ejabberd/stop.sh" >/dev/null 2>&1 || true' EXIT
t=$(now)
set -- $PROGRAMS
nprog=$#
for run in $(seq 1 "$RUNS"); do
    start_server 60
    # rotate the order per run, so no program always follows the same one
    for k in $(seq 0 $((nprog - 1))); do
        i=$(( (k + run - 1) % nprog + 1 ))
        run_prog "${!i}" "$run" $ARGS
    done
    "$BENCH/ejabberd/stop.sh" 2>/dev/null
done
t_runs=$(since "$t")

# ---- memory and reconnection (cubechat Rust, store in memory) ----------------------------------
t=$(now)
start_server "$(echo "$MEM_CLIENTS" | tr ',' '\n' | sort -n | tail -n 1)"
run_prog cubechat-rust 1 memory --clients "$MEM_CLIENTS"
sed -i '$ s/"peer":"cubechat-rust"/"peer":"cubechat-memory"/' "$raw"
run_prog cubechat-rust 1 resume --cuts "$CUTS"
sed -i '$ s/"peer":"cubechat-rust"/"peer":"cubechat-resume"/' "$raw"
"$BENCH/ejabberd/stop.sh" 2>/dev/null
t_mem=$(since "$t")

# ---- the local store benchmark (10,000 dialogs / 1,000,000 messages) ----------------------------
t=$(now)
# shellcheck disable=SC2086
"$CARGO_TARGET_DIR/release/store_bench" --dir "$BENCH_WORK" $STORE_ARGS > "$out/store_bench.out"
cat "$out/store_bench.out" >&2
line=$(tail -n 1 "$out/store_bench.out")
record "{\"peer\":\"store\",${line#\{}"
t_store=$(since "$t")

record "{\"peer\":\"timings\",\"install_s\":$t_install,\"build_s\":$t_build,\"runs_s\":$t_runs,\"memory_resume_s\":$t_mem,\"store_s\":$t_store,\"total_s\":$(since "$t_all")}"

# ---- the report --------------------------------------------------------------------------------
python3 "$BENCH/report.py" "$raw" "$out/env.json" > "$out/RESULTS.md"
if [ -z "${QUICK:-}" ]; then
    mkdir -p "$BENCH/results"
    cp "$raw" "$BENCH/results/raw.jsonl"
    cp "$out/env.json" "$BENCH/results/env.json"
    cp "$out/RESULTS.md" "$BENCH/RESULTS.md"
    echo "bench: wrote bench/RESULTS.md and bench/results/ in $(since "$t_all") s" >&2
else
    echo "bench: QUICK run, report in $out/RESULTS.md ($(since "$t_all") s)" >&2
fi
cat "$out/RESULTS.md"
