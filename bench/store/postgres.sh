#!/usr/bin/env bash
# Runs the processor benchmarks with the embedded FerretDB on its postgresql
# handler, against a throwaway PostgreSQL cluster (Debian's postgresql) on
# 127.0.0.1:54329 that is created in a temporary directory and removed afterwards.
#
#   bench/store/postgres.sh                          # BenchmarkEventsApplied, -benchtime 2000x
#   BENCH=BenchmarkSends BENCHTIME=1000x bench/store/postgres.sh
#   bench/store/postgres.sh -count 3                 # extra flags go to go test
#
# Environment: BENCH (the -bench pattern), BENCHTIME, PGPORT_BENCH (default 54329),
# WXGATE_BENCH_WORKERS (processor Workers, default 8).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
port=${PGPORT_BENCH:-54329}
bench=${BENCH:-BenchmarkEventsApplied}
benchtime=${BENCHTIME:-2000x}
db_user=wxgate_bench
db_pass=wxgate-bench-only
db_name=ferretdb

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# 1. Debian's PostgreSQL, installed only when missing.
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
	if ! apt-cache show postgresql >/dev/null 2>&1; then
		as_root apt-get update
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
	pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# 2. A cluster of our own: initdb refuses to run as root, so the server runs as
#    the postgres user when this script is run by root. The tests' clusters
#    (storetest.PostgreSQL in internal/store/storetest) are made the same way.
dir=$(mktemp -d /tmp/wxgate-pg.XXXXXX)
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
cleanup() {
	as_pg "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

as_pg "$pgbin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
	--encoding=UTF8 --locale=C >"$dir/initdb.log"
as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
	-o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$pgbin/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE $db_user LOGIN PASSWORD '$db_pass';
CREATE DATABASE $db_name OWNER $db_user;
SQL
echo "PostgreSQL $("$pgbin/postgres" --version | sed "s/^postgres (PostgreSQL) //") on 127.0.0.1:$port, database $db_name"

# 3. The benchmarks, with FerretDB's postgresql handler instead of SQLite files.
export WXGATE_BENCH_POSTGRESQL_URL="postgres://$db_user:$db_pass@127.0.0.1:$port/$db_name"
# The server's process id, so that the benchmarks can report its CPU time.
export WXGATE_BENCH_POSTGRESQL_PID="$(head -n 1 "$dir/data/postmaster.pid")"
cd "$repo"
go test -run '^$' -bench "$bench" -benchtime "$benchtime" -timeout 60m "$@" ./processor/
