#!/usr/bin/env bash
# Gate benchmark: ONE bounded run (a few minutes on 2 cores), loopback only.
#
# One Caddy process serves four sites on four loopback ports, all proxying to
# the same tiny upstream (bench/upstream):
#   a  plain reverse_proxy                      (baseline; measured first and last)
#   b  gatehouse bearer + reverse_proxy, every request a different RS256 token
#   c  the same gate config, one repeated token  (verified once, then cached)
#   d  the same gate config, mixed load: 80% valid, 10% expired,
#      5% bad signature, 3% unknown kid, 2% garbage
# wrk (installed with apt-get when missing) drives each site in turn with the
# same threads, connections and duration, after a short warm-up, and the
# script prints req/s, p99 latency and the ratio to plain reverse_proxy.
#
# Environment knobs (defaults in brackets):
#   DURATION [10]  seconds per measured run     WARMUP [3]  seconds of warm-up
#   CONNS    [32]  wrk connections              THREADS [1] wrk threads
#   MINT_BUDGET [150] max seconds spent signing unique tokens
#   KEEP [0]       1 keeps the work directory (Caddyfile, tokens, logs)
set -euo pipefail

DURATION=${DURATION:-10}
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
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 40000))
		if [[ -z ${USED[$p]:-} ]] && port_free "$p"; then
			USED[$p]=1
			echo "$p"
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
"$WORK/tokens" -dir "$WORK" -init -issuer "$ISSUER" -audience "$AUDIENCE" >&2

# --- upstream and caddy ----------------------------------------------------
"$WORK/upstream" -addr 127.0.0.1:0 -port-file "$WORK/upstream.port" 2>"$WORK/upstream.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $WORK/upstream.port ]] && break; sleep 0.05; done
UP=$(cat "$WORK/upstream.port")
PA=$(free_port) PB=$(free_port) PC=$(free_port) PD=$(free_port)

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
PIDS+=($!)
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
declare -A RPS P99 NON2XX REQS ERRS TOKS
run_wrk() { # tokens-file url seconds
	TOKENS=$1 wrk -t"$THREADS" -c"$CONNS" -d"$3s" -s "$ROOT/bench/tokens.lua" "$2"
}
measure() { # name port tokens-file warmup-tokens-file
	local name=$1 url="http://127.0.0.1:$2/orders" out
	run_wrk "$4" "$url" "$WARMUP" >/dev/null
	out=$(run_wrk "$3" "$url" "$DURATION")
	echo "$out" >"$WORK/wrk-$name.txt"
	local line
	line=$(grep '^RESULT ' <<<"$out") || { echo "wrk printed no RESULT for $name:" >&2; echo "$out" >&2; exit 1; }
	for kv in ${line#RESULT }; do
		case ${kv%%=*} in
		rps) RPS[$name]=${kv#*=} ;;
		p99_us) P99[$name]=${kv#*=} ;;
		non2xx) NON2XX[$name]=${kv#*=} ;;
		requests) REQS[$name]=${kv#*=} ;;
		errors) ERRS[$name]=${kv#*=} ;;
		tokens) TOKS[$name]=${kv#*=} ;;
		esac
	done
	log "$name: ${RPS[$name]} req/s, p99 ${P99[$name]} µs, non-2xx ${NON2XX[$name]}, socket errors ${ERRS[$name]}"
}

log "run a (plain reverse_proxy): ${WARMUP}s warm-up + ${DURATION}s, wrk -t$THREADS -c$CONNS"
measure a1 "$PA" "$WORK/repeated.txt" "$WORK/repeated.txt"

# Unique tokens: the gate cannot serve more than plain reverse_proxy, so
# baseline req/s × duration (+15%) tokens make every request of run b distinct.
NEED=$(awk -v r="${RPS[a1]}" -v d="$DURATION" 'BEGIN { printf "%d", r * d * 1.15 + 1000 }')
log "minting $NEED unique RS256 tokens (budget ${MINT_BUDGET}s; both cores)"
"$WORK/tokens" -dir "$WORK" -unique "$NEED" -budget "${MINT_BUDGET}s" -issuer "$ISSUER" -audience "$AUDIENCE" >&2

log "run b (gate, unique tokens)"
measure b "$PB" "$WORK/unique.txt" "$WORK/repeated.txt"
log "run c (gate, repeated token)"
measure c "$PC" "$WORK/repeated.txt" "$WORK/repeated.txt"
log "run d (gate, mixed load)"
measure d "$PD" "$WORK/mixed.txt" "$WORK/mixed.txt"
log "run a again (plain reverse_proxy)"
measure a2 "$PA" "$WORK/repeated.txt" "$WORK/repeated.txt"

# --- report ----------------------------------------------------------------
BASE=$(awk -v x="${RPS[a1]}" -v y="${RPS[a2]}" 'BEGIN { printf "%.1f", (x + y) / 2 }')
ratio() { awk -v x="$1" -v b="$BASE" 'BEGIN { printf "%.3f", x / b }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "PASS" : "FAIL" }'; }

echo
echo "Gate benchmark — wrk -t$THREADS -c$CONNS -d${DURATION}s per run (after ${WARMUP}s warm-up), $(nproc) cores, $(go env GOVERSION)"
printf '%-40s %10s %10s %8s %9s\n' "run" "req/s" "p99" "ratio" "non-2xx"
row() { printf '%-40s %10.0f %10s %8s %9s\n' "$1" "${RPS[$2]}" "$(ms "${P99[$2]}")" "$(ratio "${RPS[$2]}")" "${NON2XX[$2]}"; }
row "a  plain reverse_proxy (first)" a1
row "b  gate, unique RS256 tokens" b
row "c  gate, one repeated token" c
row "d  gate, mixed load" d
row "a' plain reverse_proxy (last)" a2
echo "baseline = mean of a and a' = $BASE req/s (a/a' drift $(awk -v x="${RPS[a1]}" -v y="${RPS[a2]}" 'BEGIN { d = x - y; if (d < 0) d = -d; printf "%.1f%%", 100 * d / ((x + y) / 2) }'))"

RB=$(ratio "${RPS[b]}") RC=$(ratio "${RPS[c]}")
echo "target unique   ≥ 0.90×: $RB  $(verdict "$RB" 0.90)"
echo "target repeated ≥ 0.97×: $RC  $(verdict "$RC" 0.97)"
MIXFAIL=$(awk -v n="${NON2XX[d]}" -v r="${REQS[d]}" 'BEGIN { printf "%.1f%%", 100 * n / r }')
echo "mixed load: $MIXFAIL of responses refused (expected 20.0%: 10+5+3+2)"

ok=1
for r in a1 b c a2; do
	if [[ ${NON2XX[$r]} != 0 || ${ERRS[$r]} != 0 ]]; then
		echo "WARNING: run $r had ${NON2XX[$r]} non-2xx responses and ${ERRS[$r]} socket errors; its numbers are not valid" >&2
		ok=0
	fi
done
if ((REQS[b] > TOKS[b])); then
	echo "WARNING: run b sent ${REQS[b]} requests but only ${TOKS[b]} distinct tokens were minted;" \
		"$(awk -v r="${REQS[b]}" -v t="${TOKS[b]}" 'BEGIN { printf "%.1f%%", 100 * (r - t) / r }') of its requests reused a token (raise MINT_BUDGET)" >&2
fi
((ok == 1))
