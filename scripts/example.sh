#!/usr/bin/env bash
# example.sh - the worked example `make example` plays, live, with vsectl
# on a store of its own, sqlite:./var/example.db (so that it runs beside
# `make run`, whose scheduler would otherwise claim its volume): the
# proposal's create_volume flow handed from the
# API to the scheduler to a volume host, then an extend with a concurrent
# delete that is refused at once, and the history that records it all.
set -u

B=${1:?usage: scripts/example.sh BUILD_DIR}
VSECTL=$B/vsectl
export VSE_STORE=sqlite:./var/example.db
mkdir -p var

# A fresh volume each run, so that the example can be run again and again.
uuid=$(cat /proc/sys/kernel/random/uuid)
vol=vol-${uuid%%-*}

# Print a command as the reader would type it, then run it.  The command
# line goes to fd 3 (the real stdout), so that op=$(run ...) captures only
# what vsectl printed.
exec 3>&1
show() {
    printf '\n$ vsectl %s\n' "$*" >&3
}
run() {
    show "$@"
    # Refusals and notes go where the commands go, in order.
    "$VSECTL" "$@" 2>&3
}
say() {
    printf '\n' >&3
    printf '%s\n' "$*" | fold -s -w 74 | sed -e 's/ *$//' -e 's/^/# /' >&3
}
die() {
    printf 'example: %s\n' "$*" >&2
    exit 1
}

say "vse keeps every volume's state in the store $VSE_STORE and lets it" \
    "change only along the transitions its machine declares.  The rows of" \
    "the volume machine for create, delete and extend:"
show "machine show volume | grep -E '^(OP|create|delete|extend) '"
"$VSECTL" machine show volume | grep -E '^(OP|create|delete|extend) ' ||
    die "cannot show the volume machine"

say "1. The API records the volume: create enters the create operation in" \
    "creating_db, owned by api@host1, and prints the op_id, the fencing" \
    "token every later step of this operation must show."
op=$(run create volume "$vol" --owner api@host1) || die "create failed"
echo "$op"

say "2. The API moves it to scheduling and hands it off (--release): the" \
    "owner is cleared, so the op waits for any scheduler to claim it."
run step "$vol" "$op" scheduling --release || die "step failed"

say "3. A scheduler claims the waiting op.  It gets a new op_id; the old" \
    "one is fenced, so the API can no longer act on this operation."
sched=$(run claim "$vol" "$op" --owner scheduler@host1) || die "claim failed"
echo "$sched"

say "4. The scheduler picked a host; the host's driver creates the volume" \
    "(creating_vol) and the operation ends in the rest state available."
run step "$vol" "$sched" creating_vol || die "step failed"
run finish "$vol" "$sched" available || die "finish failed"
run get "$vol"

say "The API's old op_id was fenced by the claim: a late call with it is" \
    "refused (exit status 3) and changes nothing."
run step "$vol" "$op" creating_vol
echo "exit status: $?"

say "5. volume@host2 begins extending the volume."
ext=$(run begin "$vol" extend --owner volume@host2) || die "begin failed"
echo "$ext"

say "6. At the same time api@host1 asks to delete it.  There is no lock to" \
    "wait on: the delete is refused at once, and the refusal says what is" \
    "in the way and what is allowed now (exit status 3)."
run begin "$vol" delete --owner api@host1
st=$?
echo "exit status: $st"
[ "$st" -eq 3 ] || die "the concurrent delete was not refused"

say "7. The extend ends; the volume is available again, and a delete" \
    "asked for now would be allowed."
run finish "$vol" "$ext" available || die "finish failed"

say "8. Every transition is in the history, with who made it and when; the" \
    "refused calls left no trace."
run history "$vol" || die "history failed"

say "Try, with VSE_STORE=$VSE_STORE (or --store $VSE_STORE): vsectl get" \
    "$vol --json, vsectl list, vsectl watch --since 0 --timeout 1; and" \
    "vsectl machine show volume --format mermaid, man man/vsectl.1."
exit 0
