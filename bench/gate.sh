#!/usr/bin/env bash
# Gate benchmark: ONE bounded run (a few minutes on 2 cores), loopback only.
#
# One Caddy process serves four sites on four loopback ports, all proxying to
# the same tiny upstream (bench/upstream):
#   a  plain reverse_proxy                      (baseline)
#   b  gatehouse bearer + reverse_proxy, every request a different RS256 token
#   c  the same gate config, one repeated token  (verified once, then cached)
#   d  the same gate config, mixed load: 80% valid, 10% expired,
#      5% bad signature, 3% unknown kid, 2% garbage
# wrk (installed with apt-get when missing) drives each site with the same
# threads, connections and duration, after a short warm-up; the sites take
# turns for ROUNDS rounds, and the script prints req/s, p99 latency and the
# ratio to plain reverse_proxy.
#
# Environment knobs (defaults in brackets):
#   DURATION [10]  seconds per measured run     WARMUP [3]  seconds of warm-up
#   ROUNDS   [2]   measured runs per site; the sites take turns
#   CONNS    [32]  wrk connections              THREADS [1] wrk threads
#   MINT_BUDGET [150] max seconds spent signing unique tokens
#   KEEP [0]       1 keeps the work directory (Caddyfile, tokens, logs)
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
MINT_BUDGET=${MINT_BUDGET:-150}
KEEP=${KEEP:-0}
ISSUER=https://issuer.bench.gatehouse.test
AUDIENCE=https://api.bench.gatehouse.test

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
PIDS=()

cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [[ $KEEP == 1 ]]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }

# Long-running children run in the background and are waited for, so that a
# TERM/INT reaches the trap at once and the EXIT trap kills them. A child that
# has ended is forgotten, so that cleanup never signals a recycled pid.
run_bg() {
	"$@" &
	local p=$! rc=0 q keep=()
	PIDS+=("$p")
	wait "$p" || rc=$?
	for q in "${PIDS[@]}"; do
		if [[ $q != "$p" ]]; then keep+=("$q"); fi
	done
	PIDS=("${keep[@]}")
	return "$rc"
}

# --- wrk -------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
	log "installing wrk with apt-get"
	SUDO=()
	if [[ $(id -u) != 0 ]]; then SUDO=(sudo -n); fi
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=180 update -qq
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=180 install -y -qq wrk >/dev/null
fi
command -v wrk >/dev/null || { echo "wrk is not available" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed for the sanity checks" >&2; exit 1; }

# --- build -----------------------------------------------------------------
log "building caddy (with gatehouse), the upstream and the token minter"
(cd "$ROOT" && go build -o "$WORK/caddy" ./cmd/caddy \
	&& go build -o "$WORK/upstream" ./bench/upstream \
	&& go build -o "$WORK/tokens" ./bench/tokens)

# --- ports -----------------------------------------------------------------
# A port is taken when something accepts a connection on it.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A USED=()
pick_port() { # VAR: sets VAR to a free loopback port not picked before
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 40000))
		if [[ -z ${USED[$p]:-} ]] && port_free "$p"; then
			USED[$p]=1
			printf -v "$1" '%s' "$p"
			return
		fi
	done
	echo "no free port found" >&2
	exit 1
}
wait_port() { # port seconds
	local deadline=$((SECONDS + $2))
	until ! port_free "$1"; do
		((SECONDS < deadline)) || { echo "nothing listens on 127.0.0.1:$1 after $2s" >&2; return 1; }
		sleep 0.1
	done
}

# --- keys and tokens -------------------------------------------------------
log "creating the RS256 key, jwks.json, the repeated token and the mixed load"
run_bg "$WORK/tokens" -dir "$WORK" -init -issuer "$ISSUER" -audience "$AUDIENCE" >&2

# --- upstream and caddy ----------------------------------------------------
"$WORK/upstream" -addr 127.0.0.1:0 -port-file "$WORK/upstream.port" 2>"$WORK/upstream.log" &
UPSTREAM_PID=$!
PIDS+=($UPSTREAM_PID)
for _ in $(seq 100); do [[ -s $WORK/upstream.port ]] && break; sleep 0.05; done
UP=$(cat "$WORK/upstream.port")
USED[$UP]=1
pick_port PA
pick_port PB
pick_port PC
pick_port PD

cat >"$WORK/Caddyfile" <<CADDY
{
	admin off
	auto_https off
	persist_config off
	storage file_system $WORK/caddy-storage
	log {
		level ERROR
	}
	gatehouse {
		store sqlite $WORK/gatehouse.db
	}
}

(gate) {
	gatehouse {
		bearer {
			issuer $ISSUER
			public_key $WORK/jwks.json
			audience $AUDIENCE
			scopes orders:read
		}
		forward X-Auth-Subject sub
		forward X-Auth-Client client_id
		forward X-Auth-Scope scope
	}
}

# a: plain reverse_proxy
http://127.0.0.1:$PA {
	reverse_proxy 127.0.0.1:$UP
}

# b: unique tokens
http://127.0.0.1:$PB {
	import gate
	reverse_proxy 127.0.0.1:$UP
}

# c: one repeated token
http://127.0.0.1:$PC {
	import gate
	reverse_proxy 127.0.0.1:$UP
}

# d: mixed load
http://127.0.0.1:$PD {
	import gate
	reverse_proxy 127.0.0.1:$UP
}
CADDY

log "starting caddy on 127.0.0.1:{$PA,$PB,$PC,$PD}, upstream on 127.0.0.1:$UP"
XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config \
	"$WORK/caddy" run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
CADDY_PID=$!
PIDS+=($CADDY_PID)
for p in "$PA" "$PB" "$PC" "$PD"; do
	wait_port "$p" 30 || { cat "$WORK/caddy.log" >&2; exit 1; }
done

# --- sanity: the gate admits the valid token and refuses the rest -----------
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
REP=$(head -n1 "$WORK/repeated.txt")
[[ $(status "http://127.0.0.1:$PA/orders") == 200 ]] || { echo "plain site does not answer 200" >&2; exit 1; }
[[ $(status -H "Authorization: Bearer $REP" "http://127.0.0.1:$PC/orders") == 200 ]] || { echo "gate refuses the valid token" >&2; cat "$WORK/caddy.log" >&2; exit 1; }
[[ $(status "http://127.0.0.1:$PC/orders") == 401 ]] || { echo "gate does not answer 401 without a token" >&2; exit 1; }
[[ $(status -H "Authorization: Bearer ${REP}x" "http://127.0.0.1:$PC/orders") == 401 ]] || { echo "gate accepts a tampered token" >&2; exit 1; }

# --- runs ------------------------------------------------------------------
# Each site is measured ROUNDS times, the sites taking turns (a b c d a b c d
# ...), so that a slow phase of a shared machine hits every site alike.
declare -A REQ DUR NON ERR P99MAX TOKS OFF CCPU UCPU RATIOS
for s in a b c d; do REQ[$s]=0 DUR[$s]=0 NON[$s]=0 ERR[$s]=0 P99MAX[$s]=0 OFF[$s]=0 CCPU[$s]=0 UCPU[$s]=0 RATIOS[$s]=""; done
declare -A PORT=([a]=$PA [b]=$PB [c]=$PC [d]=$PD)
declare -A FILE=([a]=$WORK/repeated.txt [b]=$WORK/unique.txt [c]=$WORK/repeated.txt [d]=$WORK/mixed.txt)
declare -A WARMFILE=([a]=$WORK/repeated.txt [b]=$WORK/repeated.txt [c]=$WORK/repeated.txt [d]=$WORK/mixed.txt)
TICK=$(getconf CLK_TCK)

wrk_run() { # tokens-file offset url seconds → sets LINE to the RESULT fields
	TOKENS=$1 OFFSET=$2 run_bg wrk -t"$THREADS" -c"$CONNS" -d"$4s" -s "$ROOT/bench/tokens.lua" "$3" >"$WORK/wrk.out"
	LINE=$(grep '^RESULT ' "$WORK/wrk.out") || { echo "wrk printed no RESULT:" >&2; cat "$WORK/wrk.out" >&2; exit 1; }
	LINE=${LINE#RESULT }
}
field() { # key line
	local kv
	for kv in $2; do
		if [[ ${kv%%=*} == "$1" ]]; then
			echo "${kv#*=}"
			return 0
		fi
	done
	echo "RESULT line has no $1" >&2
	return 1
}
cpu_ticks() { # pid → user+system CPU ticks so far
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) } # fields after the command name
	set -- $stat
	echo $((${12} + ${13}))
}

log "warm-up: ${WARMUP}s per site (the unique-token site warms up on the repeated token)"
for s in a b c d; do
	wrk_run "${WARMFILE[$s]}" 0 "http://127.0.0.1:${PORT[$s]}/orders" "$WARMUP"
	log "  warm-up $s: $(field rps "$LINE") req/s"
	if [[ $s == a ]]; then WARM_A=$(field rps "$LINE"); fi
done

# Unique tokens: the gate serves at most about what plain reverse_proxy does,
# so baseline req/s × measured seconds (+30%) tokens make every request of run
# b distinct.
NEED=$(awk -v r="$WARM_A" -v d="$DURATION" -v n="$ROUNDS" 'BEGIN { printf "%d", r * d * n * 1.3 + 2000 }')
log "minting $NEED unique RS256 tokens (budget ${MINT_BUDGET}s, all cores)"
run_bg "$WORK/tokens" -dir "$WORK" -unique "$NEED" -budget "${MINT_BUDGET}s" -issuer "$ISSUER" -audience "$AUDIENCE" >&2

ORDER=(a b c d)
for round in $(seq "$ROUNDS"); do
	# rotate the order each round: a b c d, b c d a, c d a b, ...
	k=$(((round - 1) % 4))
	declare -A ROUND_RPS=()
	for s in "${ORDER[@]:k}" "${ORDER[@]:0:k}"; do
		c0=$(cpu_ticks "$CADDY_PID") u0=$(cpu_ticks "$UPSTREAM_PID")
		wrk_run "${FILE[$s]}" "${OFF[$s]}" "http://127.0.0.1:${PORT[$s]}/orders" "$DURATION"
		line=$LINE
		c1=$(cpu_ticks "$CADDY_PID") u1=$(cpu_ticks "$UPSTREAM_PID")
		r=$(field requests "$line")
		REQ[$s]=$((REQ[$s] + r))
		OFF[$s]=$((OFF[$s] + r))
		DUR[$s]=$((DUR[$s] + $(field duration_us "$line")))
		NON[$s]=$((NON[$s] + $(field non2xx "$line")))
		ERR[$s]=$((ERR[$s] + $(field errors "$line")))
		CCPU[$s]=$((CCPU[$s] + c1 - c0))
		UCPU[$s]=$((UCPU[$s] + u1 - u0))
		TOKS[$s]=$(field tokens "$line")
		ROUND_RPS[$s]=$(field rps "$line")
		p=$(field p99_us "$line")
		if ((p > P99MAX[$s])); then P99MAX[$s]=$p; fi
		log "round $round/$ROUNDS $s: ${ROUND_RPS[$s]} req/s, p99 $p µs, non-2xx $(field non2xx "$line")"
	done
	for s in b c d; do
		RATIOS[$s]+=" $(awk -v x="${ROUND_RPS[$s]}" -v a="${ROUND_RPS[a]}" 'BEGIN { printf "%.2f", x / a }')"
	done
done

# --- report ----------------------------------------------------------------
rps() { awk -v r="${REQ[$1]}" -v d="${DUR[$1]}" 'BEGIN { printf "%.1f", r / (d / 1e6) }'; }
BASE=$(rps a)
ratio() { awk -v x="$(rps "$1")" -v b="$BASE" 'BEGIN { printf "%.3f", x / b }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "PASS" : "FAIL" }'; }

echo
echo "Gate benchmark: wrk -t$THREADS -c$CONNS, ${ROUNDS} rounds × ${DURATION}s per site (sites take turns), ${WARMUP}s warm-up each; $(nproc) cores; $(go env GOVERSION)"
printf '%-30s %9s %10s %7s %-17s %8s %10s %10s\n' "run" "req/s" "p99" "ratio" "per-round ratios" "non-2xx" "caddy CPU" "upstr. CPU"
cpu_us() { awk -v t="$1" -v n="${REQ[$2]}" -v hz="$TICK" 'BEGIN { printf "%.0f µs/req", t / hz * 1e6 / n }'; }
row() {
	printf '%-30s %9.0f %10s %7s %-17s %8s %10s %10s\n' "$1" "$(rps "$2")" "$(ms "${P99MAX[$2]}")" "$(ratio "$2")" \
		"${RATIOS[$2]:- -}" "${NON[$2]}" "$(cpu_us "${CCPU[$2]}" "$2")" "$(cpu_us "${UCPU[$2]}" "$2")"
}
row "a  plain reverse_proxy" a
row "b  gate, unique RS256 tokens" b
row "c  gate, one repeated token" c
row "d  gate, mixed load" d
echo "req/s over all rounds; p99 = the worst round's; ratio = req/s ÷ run a (per round in the next column);"
echo "CPU = the Caddy / upstream process's user+system CPU time per request (wrk's is not counted)."
echo "Gate cost in situ: caddy CPU/req of b, c, d minus that of a."

RB=$(ratio b) RC=$(ratio c)
echo "target unique   ≥ 0.90×: $RB  $(verdict "$RB" 0.90)"
echo "target repeated ≥ 0.97×: $RC  $(verdict "$RC" 0.97)"
echo "mixed load: $(awk -v n="${NON[d]}" -v r="${REQ[d]}" 'BEGIN { printf "%.1f%%", 100 * n / r }') of responses refused (expected 20.0% = 10 expired + 5 bad signature + 3 unknown kid + 2 garbage)"

ok=1
for s in a b c; do
	if [[ ${NON[$s]} != 0 || ${ERR[$s]} != 0 ]]; then
		echo "WARNING: run $s had ${NON[$s]} non-2xx responses and ${ERR[$s]} socket errors; its numbers are not valid" >&2
		ok=0
	fi
done
if ((REQ[b] > TOKS[b])); then
	echo "NOTE: run b sent ${REQ[b]} requests with ${TOKS[b]} distinct tokens (the signing budget ran out), so tokens came round again," \
		"each after ${TOKS[b]} others; the gate's verified-token cache holds 10,000 with random eviction, so a token that comes round" \
		"is almost always gone from it$( ((TOKS[b] < 50000)) && echo " — but fewer than 50,000 tokens is too few: raise MINT_BUDGET")." >&2
else
	echo "unique run: ${REQ[b]} requests, ${TOKS[b]} distinct tokens: no token was sent twice."
fi
((ok == 1))
