#!/bin/sh
# bench-wrk: POST /token of the built tokend under wrk, with a warm cache and
# the default middleware (log level error, metrics, CORS, limits; only the
# request budget raised, so that one client address may send this fast),
# against internal/benchsrv, a constant-JSON net/http handler, in the same
# run: ROUNDS rounds of both, in alternating order. It prints each round's
# ratio, the median and range, and every answer that was not a 200.
#
#   make bench-wrk                        # ROUNDS=5 DURATION=3s CONNS=32 THREADS=2
#   PPROF=cpu.pprof make bench-wrk         # also a CPU profile of tokend under wrk (PPROF_SECONDS=5)
#   REDIS=1 make bench-wrk                 # tokend with REDIS_URL vs without, instead
#   BASE=main make bench-wrk               # also tokend built from git revision BASE
#
# With REDIS=1 the second server is the same binary and .env plus REDIS_URL
# (REDIS_URL, default redis://127.0.0.1:6379/0) and a REDIS_PREFIX unique to
# this run, whose keys are deleted afterwards: the ratio is redis/memory.
#
# With BASE=REV a third server runs in the same rounds: tokend built from the
# git revision REV (git archive, so uncommitted changes are not in it), with
# the same .env. Each round then also prints base/constant and token/base:
# whether a change helps, measured within each round, where the noise of a
# shared machine cancels.
#
# wrk is the Debian package: apt-get install -y wrk
set -eu
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
GO=${GO:-go}
TOKEND_ADDR=127.0.0.1:${TOKEND_PORT:-18080}
METRICS=127.0.0.1:${METRICS_PORT:-18090}
CONST_ADDR=127.0.0.1:${CONST_PORT:-18081}
REDIS=${REDIS:-}
BASE=${BASE:-}
BASE_ADDR=127.0.0.1:${BASE_PORT:-18082}
BASE_METRICS=127.0.0.1:${BASE_METRICS_PORT:-18092}
BENCH_REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
prefix=tokend-bench-$$-$(date +%s):

command -v wrk >/dev/null || { echo "bench-wrk: wrk is missing: apt-get install -y wrk" >&2; exit 1; }
if [ -n "$REDIS" ]; then
	command -v redis-cli >/dev/null || { echo "bench-wrk: REDIS=1 needs redis-cli: apt-get install -y redis-tools" >&2; exit 1; }
	redis-cli -u "$BENCH_REDIS_URL" ping >/dev/null 2>&1 || { echo "bench-wrk: no Redis answers at $BENCH_REDIS_URL (set REDIS_URL)" >&2; exit 1; }
fi
[ -z "$REDIS" ] || [ -z "$BASE" ] || { echo "bench-wrk: REDIS=1 and BASE= are two different comparisons; run one at a time" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
[ -z "$BASE" ] || git -C "$here" rev-parse -q --verify "$BASE^{commit}" >/dev/null ||
	{ echo "bench-wrk: BASE=$BASE is not a git revision of $here" >&2; exit 1; }
tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"
	[ -z "$REDIS" ] || redis-cli -u "$BENCH_REDIS_URL" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$BENCH_REDIS_URL" del >/dev/null
}
trap cleanup EXIT INT TERM

(cd "$here" && $GO build -o "$tmp/tokend" . && $GO build -o "$tmp/benchsrv" ./internal/benchsrv)
if [ -n "$BASE" ]; then
	mkdir "$tmp/base"
	git -C "$here" archive "$BASE" | tar -x -C "$tmp/base"
	(cd "$tmp/base" && $GO build -o "$tmp/tokend-base" .)
fi

password=bench-password-$$
cat >"$tmp/env" <<ENV
TWILIO_ACCOUNT_SID=ACdeadbeefdeadbeefdeadbeefdeadbeef
TWILIO_API_KEY_SID=SKdeadbeefdeadbeefdeadbeefdeadbeef
TWILIO_API_KEY_SECRET=bench-secret-not-a-real-one-0123456789
USERS_FILE=$tmp/users
LISTEN_ADDR=$TOKEND_ADDR
METRICS_ADDR=$METRICS
LOG_LEVEL=error
CORS_ALLOWED_ORIGINS=https://app.example.com
TOKEN_GRANTS=video
LIMIT_ADDR_REQUESTS=1000000
LIMIT_ADDR_REQUESTS_PER_SECOND=1000000
ENV
printf '%s\n' "$password" | "$tmp/tokend" user add --env-file "$tmp/env" bench >/dev/null

body="{\"username\":\"bench\",\"password\":\"$password\"}"
# serve NAME BIN LISTEN METRICS [EXTRA [FLAGS]]: starts BIN serve with the
# bench .env moved to LISTEN and METRICS, plus the .env lines EXTRA, logging
# to $tmp/NAME.log, and waits until it answers the login with a 200. Its pid
# is left in $served.
serve() {
	sed -e "s|^LISTEN_ADDR=.*|LISTEN_ADDR=$3|" -e "s|^METRICS_ADDR=.*|METRICS_ADDR=$4|" "$tmp/env" >"$tmp/env.$1"
	[ -z "${5:-}" ] || printf '%s\n' "$5" >>"$tmp/env.$1"
	"$2" serve --env-file "$tmp/env.$1" ${6:-} 2>"$tmp/$1.log" &
	served=$!
	pids="$pids $served"
	i=0
	until curl -sf -o /dev/null -H 'Content-Type: application/json' -d "$body" "http://$3/token"; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "bench-wrk: $1 did not answer 200:" >&2; cat "$tmp/$1.log" >&2; exit 1; }
		sleep 0.1
	done
}

pprof_flag=""
[ -n "${PPROF:-}" ] && pprof_flag=--pprof
serve tokend "$tmp/tokend" "$TOKEND_ADDR" "$METRICS" "" "$pprof_flag"
tokend_pid=$served
size=$(curl -sf -o /dev/null -w '%{size_download}' -H 'Content-Type: application/json' -d "$body" "http://$TOKEND_ADDR/token")
if [ -n "$REDIS" ]; then
	# The same binary and .env, plus Redis: the "constant" side becomes tokend
	# with REDIS_URL, and the ratio is Redis/memory.
	serve tokend-redis "$tmp/tokend" "$CONST_ADDR" "127.0.0.1:${REDIS_METRICS_PORT:-18091}" "$(printf 'REDIS_URL=%s\nREDIS_PREFIX=%s' "$BENCH_REDIS_URL" "$prefix")"
	const_pid=$served
	redis-cli -u "$BENCH_REDIS_URL" --scan --pattern "$prefix*" | grep -q . || { echo "bench-wrk: tokend wrote no $prefix* keys to Redis" >&2; exit 1; }
else
	"$tmp/benchsrv" -addr "$CONST_ADDR" -size "$size" &
	const_pid=$!
	pids="$pids $const_pid"
	until curl -sf -o /dev/null "http://$CONST_ADDR/"; do sleep 0.1; done
fi
if [ -n "$BASE" ]; then
	serve tokend-base "$tmp/tokend-base" "$BASE_ADDR" "$BASE_METRICS"
	base_pid=$served
fi

export BENCH_BODY="$body"
# ticks: CPU time (user + system, in clock ticks) the process has used.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# run URL PID: one wrk run; its RESULT line gains cpu_us, the server's CPU
# time per request in microseconds.
run() {
	t0=$(ticks "$2")
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$here/scripts/wrk-status.lua" "$1" | grep '^RESULT')
	t1=$(ticks "$2")
	echo "$out" | awk -v d=$((t1 - t0)) -v hz="$hz" '{ split($2, r, "="); printf "%s cpu_us=%.1f\n", $0, d / hz * 1e6 / r[2] }'
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

a=token b=constant
if [ -n "$REDIS" ]; then
	a=memory b=redis
	echo "wrk -t$THREADS -c$CONNS -d$DURATION, POST /token (warm cache, $size-byte answers), tokend without REDIS_URL (memory) vs with (redis, prefix $prefix), $ROUNDS rounds"
else
	echo "wrk -t$THREADS -c$CONNS -d$DURATION, POST /token (warm cache, $size-byte answers) vs constant JSON${BASE:+ and tokend built from $BASE (base)}, $ROUNDS rounds"
fi
ratios=""
cpus=""
bases=""
gains=""
bad=0
r=1
while [ $r -le "$ROUNDS" ]; do
	# The order changes from round to round, so no server always runs
	# first or last.
	order="c t"
	[ $((r % 2)) -eq 1 ] || order="t c"
	if [ -n "$BASE" ]; then
		case $((r % 3)) in 1) order="c t b" ;; 2) order="t b c" ;; 0) order="b c t" ;; esac
	fi
	for who in $order; do
		case $who in
		c) c=$(run "http://$CONST_ADDR/token" $const_pid) ;;
		t) t=$(run "http://$TOKEND_ADDR/token" $tokend_pid) ;;
		b) base=$(run "http://$BASE_ADDR/token" $base_pid) ;;
		esac
	done
	if [ -n "$REDIS" ]; then
		ratio=$(awk -v a="$(field "$t" rps)" -v b="$(field "$c" rps)" 'BEGIN { printf "%.3f", b / a }')
	else
		ratio=$(awk -v a="$(field "$t" rps)" -v b="$(field "$c" rps)" 'BEGIN { printf "%.3f", a / b }')
	fi
	cpu=$(awk -v a="$(field "$t" cpu_us)" -v b="$(field "$c" cpu_us)" 'BEGIN { printf "%.3f", b / a }')
	bad=$((bad + $(field "$t" non200) + $(field "$t" socket_errors) + $(field "$c" non200) + $(field "$c" socket_errors)))
	printf 'round %d: %s %s req/s (non-200 %s, p99 %s ms, %s µs CPU each), %s %s req/s (non-200 %s, p99 %s ms, %s µs CPU each): ratio %s, CPU ratio %s\n' \
		"$r" "$a" "$(field "$t" rps)" "$(field "$t" non200)" "$(field "$t" p99_ms)" "$(field "$t" cpu_us)" \
		"$b" "$(field "$c" rps)" "$(field "$c" non200)" "$(field "$c" p99_ms)" "$(field "$c" cpu_us)" "$ratio" "$cpu"
	if [ -n "$BASE" ]; then
		bad=$((bad + $(field "$base" non200) + $(field "$base" socket_errors)))
		bratio=$(awk -v a="$(field "$base" rps)" -v b="$(field "$c" rps)" 'BEGIN { printf "%.3f", a / b }')
		gain=$(awk -v a="$(field "$t" rps)" -v b="$(field "$base" rps)" 'BEGIN { printf "%.3f", a / b }')
		printf '         base %s req/s (non-200 %s, p99 %s ms, %s µs CPU each): base/constant %s, token/base %s\n' \
			"$(field "$base" rps)" "$(field "$base" non200)" "$(field "$base" p99_ms)" "$(field "$base" cpu_us)" "$bratio" "$gain"
		bases="$bases $bratio"
		gains="$gains $gain"
	fi
	ratios="$ratios $ratio"
	cpus="$cpus $cpu"
	r=$((r + 1))
done
summary() { tr ' ' '\n' | grep . | sort -n | awk -v what="$1" '
	{ v[NR] = $1 } END { printf "%s: median %.3f, range %.3f-%.3f over %d rounds\n", what, v[int((NR + 1) / 2)], v[1], v[NR], NR }'; }
if [ -n "$REDIS" ]; then
	echo "$ratios" | summary "throughput ratio redis/memory (req/s)"
	echo "$cpus" | summary "CPU ratio redis/memory (tokend CPU time per request, Redis's own not counted)"
else
	echo "$ratios" | summary "throughput ratio token/constant (req/s)"
	echo "$cpus" | summary "CPU ratio constant/token (server CPU time per request)"
fi
if [ -n "$BASE" ]; then
	echo "$bases" | summary "throughput ratio base/constant (req/s), base = $BASE"
	echo "$gains" | summary "throughput ratio token/base (req/s)"
fi
echo "answers not 200 (or socket errors), all servers, all rounds: $bad"
if [ -n "${PPROF:-}" ]; then
	secs=${PPROF_SECONDS:-5}
	curl -sf -o "$PPROF" "http://$METRICS/debug/pprof/profile?seconds=$secs" &
	cp=$!
	wrk -t"$THREADS" -c"$CONNS" -d$((secs + 1))s -s "$here/scripts/wrk-status.lua" "http://$TOKEND_ADDR/token" >/dev/null
	wait $cp
	echo "CPU profile of tokend under wrk: $PPROF (go tool pprof -top $PPROF)"
fi
[ "$bad" -eq 0 ]
