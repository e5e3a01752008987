#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the store tests (or reuses the one
# an earlier run started) and prints, on stdout and nothing else,
#
#   export GATEHOUSE_TEST_POSTGRES_DSN='postgres://...'
#
# so CI can run:   eval "$(bash .ci/postgres.sh)"
#
# Debian, as root (installs postgresql with apt-get if initdb is missing; the
# cluster runs as the postgres user). As a non-root user it needs PostgreSQL
# installed and runs the cluster as that user. Everything else goes to stderr.
# The cluster listens on 127.0.0.1 only, on a free port, with scram-sha-256
# password auth over TCP, and fsync off (test data only); it lives in $GATEHOUSE_PG_DIR (default
# /tmp/gatehouse-postgres-$UID). Stop it with:
#   bash .ci/postgres.sh stop
set -euo pipefail
exec 3>&1 1>&2 # fd 3 is the real stdout; everything else goes to stderr

dir=${GATEHOUSE_PG_DIR:-/tmp/gatehouse-postgres-$(id -u)}
db=gatehouse_test
role=gatehouse

log() { printf 'postgres.sh: %s\n' "$*"; }
die() { log "error: $*"; exit 1; }

# bindir prints the directory holding initdb and pg_ctl, or fails.
bindir() {
	local b
	if b=$(command -v initdb) && command -v pg_ctl >/dev/null; then
		dirname "$(readlink -f "$b")"
		return 0
	fi
	for b in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x $b/initdb && -x $b/pg_ctl ]]; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

if ! bin=$(bindir); then
	[[ $EUID -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root"
	log "installing postgresql with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q 3>&-
	apt-get install -y -q --no-install-recommends postgresql 3>&-
	bin=$(bindir) || die "apt-get installed postgresql but no initdb/pg_ctl was found"
fi
log "using $bin"

if [[ $EUID -eq 0 ]]; then
	if ! id postgres >/dev/null 2>&1; then
		log "creating the postgres system user"
		useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
	fi
	owner=postgres
	as_owner() { runuser -u postgres -- "$@" 3>&-; }
else
	owner=$(id -un)
	as_owner() { "$@" 3>&-; }
fi
# as_owner closes fd 3 for what it runs: the server pg_ctl starts would
# otherwise inherit the caller's $(...) pipe and keep it open for its whole
# life, so `eval "$(bash .ci/postgres.sh)"` would never return.
cd / # the cluster's user may not be able to enter the caller's directory

# `bash .ci/postgres.sh stop` stops the cluster (CI calls it on exit).
if [[ ${1:-} == stop ]]; then
	if [[ -d $dir/data ]]; then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 && log "stopped the cluster in $dir" || true
	fi
	exit 0
fi

# Reuse a cluster an earlier run left running, if it still answers.
if [[ -f $dir/dsn && -f $dir/port ]] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 &&
	"$bin/pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")" -t 5; then
	log "reusing the cluster in $dir (port $(cat "$dir/port"))"
	printf "export GATEHOUSE_TEST_POSTGRES_DSN='%s'\n" "$(cat "$dir/dsn")" >&3
	exit 0
fi

# Otherwise start from nothing: stop whatever is left and wipe it.
if [[ -d $dir ]]; then
	log "removing the stale cluster in $dir"
	as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
fi

# A free port: nothing accepts connections on it.
port=
for p in $(seq 54320 54420); do
	if ! (exec 9<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[[ -n $port ]] || die "no free port in 54320-54420"

umask 077
mkdir -p "$dir"
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$dir/pwfile"
chown -R "$owner" "$dir"
chmod 700 "$dir"

log "creating a cluster in $dir/data"
as_owner "$bin/initdb" -D "$dir/data" -U "$role" --pwfile="$dir/pwfile" \
	--auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log"; die "initdb failed"; }
rm -f "$dir/pwfile"
cat >>"$dir/data/postgresql.conf" <<CONF
# gatehouse .ci/postgres.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
# A throwaway test cluster: durability buys nothing here and costs seconds.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF

log "starting it on 127.0.0.1:$port"
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
	{ cat "$dir/server.log"; die "the server did not start"; }
as_owner "$bin/createdb" -h "$dir" -p "$port" -U "$role" "$db"

dsn="postgres://$role:$password@127.0.0.1:$port/$db?sslmode=disable"
printf '%s\n' "$dsn" >"$dir/dsn"
printf '%s\n' "$port" >"$dir/port"
chown "$owner" "$dir/dsn" "$dir/port"
log "ready: database $db on 127.0.0.1:$port"
printf "export GATEHOUSE_TEST_POSTGRES_DSN='%s'\n" "$dsn" >&3
