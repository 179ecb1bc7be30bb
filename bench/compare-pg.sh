#!/usr/bin/env bash
# compare-pg.sh - vse on PostgreSQL against the bare transaction in raw
# libpq (raw-pg.c: read the row, UPDATE ... WHERE version, insert the
# history row, commit; its own minimal schema, no ordering scheme), same
# throwaway server, same run: transitions per second and their ratio at
# 1, 4 and 16 clients; then the contention shapes of the
# classic Cinder measurement (100 resources x 3 workers, 5 x 100) with
# acquire/release latency.  Usage: bench/compare-pg.sh BUILD [SECONDS]
# (VSE_PG_URL set: use that server instead of a throwaway one.)
# vsectl bench runs its clients as threads (--threads), as the raw
# program does: like for like.  vse's threads share one group commit (the
# default); the "alone" column is vse with group_commit=off, each
# transition its own transaction as raw's are.
set -eu
B=${1:?usage: compare-pg.sh BUILD [SECONDS]}
S=${2:-5}
if [ -z "${VSE_PG_URL:-}" ]; then
    . "$(dirname "$0")/../tests/pg.sh"
    pg_start
fi
U=$VSE_PG_URL
"$B/vsectl" --store "$U" list >/dev/null # creates the schema
tps() { sed -n 's/.*"transitions_per_s":\([0-9.]*\).*/\1/p'; }
case $U in *\?*) OFF="$U&group_commit=off" ;; *) OFF="$U?group_commit=off" ;; esac
ratio() { awk -v v="$1" -v r="$2" 'BEGIN { print (r > 0 ? v / r : 0) }'; }
printf '%-8s %12s %12s %12s %7s %7s\n' clients vse/s alone/s raw/s ratio \
    alone
for n in 1 4 16; do
    v=$("$B/vsectl" --store "$U" bench --threads --clients $n --resources 64 \
        --seconds "$S" --json | tps)
    a=$("$B/vsectl" --store "$OFF" bench --threads --clients $n \
        --resources 64 --seconds "$S" --json | tps)
    r=$("$B/bench/raw-pg" --url "$U" --clients $n --resources 64 \
        --seconds "$S" --json | tps)
    printf '%-8s %12.0f %12.0f %12.0f %7.2f %7.2f\n' $n "$v" "$a" "$r" \
        "$(ratio "$v" "$r")" "$(ratio "$a" "$r")"
done
"$B/bench/raw-pg" --url "$U" --contention 100:3 --seconds "$S"
"$B/bench/raw-pg" --url "$U" --contention 5:100 --seconds "$S"
