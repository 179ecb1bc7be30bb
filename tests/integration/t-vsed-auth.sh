#!/usr/bin/env bash
# t-vsed-auth.sh - who may do what: a bare vsed answers 401 without a
# token; configured tokens (stored as hashes) have roles reader, member
# and admin, checked per route (401/403); both token headers work; noauth
# off loopback is refused at start; `vsed hash-token` makes the hashes.
set -u
. "$(dirname "$0")/vsed-lib.sh"

# Refused at start: noauth anywhere but loopback.
"$VSED" --store "sqlite:$T/x.db" --listen 0.0.0.0:0 --auth noauth \
    2>"$T/refused" </dev/null
rc=$?
[ "$rc" = 2 ] && grep -q 'refusing to listen' "$T/refused" &&
    ok "noauth on 0.0.0.0 refused at start" ||
    not_ok "noauth on 0.0.0.0 refused at start" "rc $rc" "$(cat "$T/refused")"
"$VSED" --bogus 2>/dev/null; [ $? = 2 ] && ok "bad option: exit 2" || not_ok "bad option: exit 2"
"$VSED" --help | grep -q 'hash-token' && ok "--help" || not_ok "--help"
"$VSED" --version | grep -q '^vsed ' && ok "--version" || not_ok "--version"

# hash-token is SHA-256 of the token (without the newline).
h=$(printf 'r-secret\n' | "$VSED" hash-token)
want="sha256:$(printf 'r-secret' | sha256sum | cut -d' ' -f1)"
[ "$h" = "$want" ] && ok "hash-token" || not_ok "hash-token" "$h" "$want"

# A bare vsed (token auth by default, no tokens): 401, healthz still open.
start_vsed "$T/bare.log" --store "sqlite:$T/s.db" || { cat "$T/bare.log"; exit 1; }
req GET /v1/machines
expect "bare vsed: 401 without a token" 401 "j['error']['code'] == 'unauthorized'"
req GET /healthz
expect "bare vsed: healthz needs no token" 200
stop_vsed

cat >"$T/vsed.yaml" <<YAML
reaper_interval: 0
tokens:
  - {name: ro, hash: "$(printf r-secret | "$VSED" hash-token)", role: reader}
  - {name: worker, hash: "$(printf m-secret | "$VSED" hash-token)", role: member}
  - {name: root, hash: "$(printf a-secret | "$VSED" hash-token)", role: admin}
YAML
start_vsed "$T/vsed.log" --store "sqlite:$T/s.db" --config "$T/vsed.yaml" ||
    { cat "$T/vsed.log"; exit 1; }
R=(-H 'Authorization: Bearer r-secret')
M=(-H 'Authorization: Bearer m-secret')
A=(-H 'X-Auth-Token: a-secret')

req GET /v1/resources '' -H 'Authorization: Bearer wrong'
expect "wrong token 401" 401 "j['error']['message'] == 'token not accepted'"
req GET /metrics
expect "metrics need a token" 401
req GET /v1/events
expect "events need a token" 401
req GET /v1/resources '' "${R[@]}"
expect "reader may GET" 200
req GET /metrics '' "${R[@]}"
expect "reader may read metrics" 200
req POST /v1/resources '{"machine":"volume","id":"a1"}' "${R[@]}"
expect "reader may not create: 403" 403 "j['error']['code'] == 'forbidden'"
req POST /v1/resources '{"machine":"volume","id":"a1","owner":"x"}' "${M[@]}"
expect "member may create" 201
OP=$(jget "json.load(sys.stdin)['op_id']")
req POST /v1/resources/a1/reset-state '{"to":"error","reason":"r"}' "${M[@]}"
expect "member may not reset-state: 403" 403
req POST /v1/reap '' "${M[@]}"
expect "member may not reap: 403" 403
req POST /v1/purge '' "${M[@]}"
expect "member may not purge: 403" 403
req POST /v1/resources/a1/reset-state '{"to":"error","reason":"r"}' "${A[@]}"
expect "admin may reset-state (X-Auth-Token); actor is the token name" 200 \
    "j['state'] == 'error'"
req GET /v1/resources/a1/history '' "${A[@]}"
expect "reset recorded with the token name" 200 "j['history'][-1]['owner'] == 'root'"
req POST /v1/reap '' "${A[@]}"
expect "admin may reap" 200
req POST /v1/purge '{}' "${A[@]}"
expect "admin may purge" 200
CODE=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "${R[@]}" "$URL/v1/events?since=0" \
    --max-time 1)
[ "$CODE" = 200 ] && ok "reader may watch events" || not_ok "reader may watch events" "$CODE"

# vsectl --url takes the token from --token or VSE_TOKEN.
"$VSECTL" --url "$URL" get a1 >/dev/null 2>"$T/err"
[ $? = 1 ] && grep -q 'authentication required' "$T/err" &&
    ok "vsectl without a token: exit 1" || not_ok "vsectl without a token" "$(cat "$T/err")"
VSE_TOKEN=r-secret "$VSECTL" --url "$URL" get a1 >/dev/null &&
    ok "vsectl with VSE_TOKEN" || not_ok "vsectl with VSE_TOKEN"
"$VSECTL" --url "$URL" --token r-secret reap >/dev/null 2>"$T/err"
[ $? = 1 ] && grep -q 'needs admin' "$T/err" && ok "vsectl reader may not reap" ||
    not_ok "vsectl reader may not reap" "$(cat "$T/err")"
stop_vsed

printf 'tokens:\n  - {name: x, hash: "sha256:12", role: reader}\n' >"$T/bad.yaml"
"$VSED" --config "$T/bad.yaml" 2>"$T/err" </dev/null
[ $? = 2 ] && grep -q 'bad.yaml:2:.*hash must be sha256' "$T/err" &&
    ok "bad token hash in the config: FILE:LINE" || not_ok "bad token hash" "$(cat "$T/err")"

# volume_workers: 1 to 64; anything else is the config's line, exit 2.
for v in 0 65 four; do
    printf 'auth: noauth\nvolume_workers: %s\n' "$v" >"$T/bad.yaml"
    "$VSED" --config "$T/bad.yaml" 2>"$T/err" </dev/null
    [ $? = 2 ] && grep -q 'bad.yaml:2:.*volume_workers' "$T/err" &&
        ok "volume_workers: $v refused: FILE:LINE, exit 2" ||
        not_ok "volume_workers: $v refused" "$(cat "$T/err")"
done
printf 'auth: noauth\nvolume_workers: 3\nreaper_interval: 0\n' >"$T/w.yaml"
start_vsed "$T/w.log" --store "sqlite:$T/w.db" --config "$T/w.yaml" \
    --role volume --host hw --pool "$T/pool-w" --listen 127.0.0.1:0 ||
    { cat "$T/w.log"; exit 1; }
for i in $(seq 1 250); do
    grep -q 'with 3 workers' "$T/w.log" && break
    sleep 0.02
done
grep -q 'with 3 workers' "$T/w.log" && ok "volume_workers: 3 from the config" ||
    not_ok "volume_workers: 3 from the config" "$(cat "$T/w.log")"
stop_vsed
finish
