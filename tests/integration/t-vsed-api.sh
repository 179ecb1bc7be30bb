#!/usr/bin/env bash
# t-vsed-api.sh - vsed's /v1 API end to end on a real SQLite store: every
# route's happy path and error statuses, the one error shape, request ids
# (a retried request is answered as done), bad bodies, unknown routes and
# methods, metrics, the event stream resumed with Last-Event-ID, and the
# reaper expiring a lease.
set -u
. "$(dirname "$0")/vsed-lib.sh"

start_vsed "$T/vsed.log" --store "sqlite:$T/s.db" --auth noauth \
    --reaper-interval 1 || { cat "$T/vsed.log"; exit 1; }

req GET /healthz
expect "healthz" 200 "j['status'] == 'ok'"

req GET /v1/machines
expect "machines list" 200 "'volume' in [m['name'] for m in j['machines']]"
req GET /v1/machines/volume
expect "machine as json" 200 "'states' in j"
expect "machine json: the default retry budget of extend" 200 \
    "[o['retry'] for o in j['operations'] if o['name'] == 'extend'] == [{'attempts': 5, 'unclaimed': '10m0s'}]"
req GET '/v1/machines/volume?format=dot'
[ "$CODE" = 200 ] && case $BODY in digraph*) ok "machine as dot" ;;
    *) not_ok "machine as dot" "$BODY" ;; esac
req GET '/v1/machines/volume?format=mermaid'
[ "$CODE" = 200 ] && case $BODY in stateDiagram*) ok "machine as mermaid" ;;
    *) not_ok "machine as mermaid" "$BODY" ;; esac
req GET '/v1/machines/volume?format=png'
expect "machine bad format 400" 400 "j['error']['code'] == 'invalid'"
req GET /v1/machines/nope
expect "machine unknown 404" 404 "j['error']['code'] == 'not_found'"

# create → 201, with the request id echoed and recorded.
req POST /v1/resources '{"machine":"volume","id":"v1","owner":"api@h1"}' \
    -H 'X-Request-Id: create-v1'
expect "create 201" 201 "j['state'] == 'creating_db' and j['status'] == 'creating'"
OP=$(jget "json.load(sys.stdin)['op_id']")
grep -q '^X-Request-Id: create-v1$' <<<"$HDRS" && ok "request id echoed" ||
    not_ok "request id echoed" "$HDRS"
req POST /v1/resources '{"machine":"volume","id":"v1","owner":"api@h1"}' \
    -H 'X-Request-Id: create-v1'
expect "create retried with the same request id: done" 200 \
    "j['op_id'] == '$OP'"
grep -q '^X-Vse-Repeated: true$' <<<"$HDRS" && ok "repeat is flagged" ||
    not_ok "repeat is flagged" "$HDRS"
req POST /v1/resources '{"machine":"volume","id":"v1"}'
expect "create existing 409" 409 "j['error']['code'] == 'exists'"
req POST /v1/resources '{"machine":"nosuch","id":"v2"}'
expect "create unknown machine 400" 400 "j['error']['code'] == 'invalid'"
req POST /v1/resources '{"id":"v2"}'
expect "create without machine 422" 422 \
    "j['error']['code'] == 'unprocessable'"

req GET /v1/resources/v1
expect "get" 200 "j['id'] == 'v1' and j['op'] == 'create'"
expect "get shows both sides of holds" 200 \
    "j['holds'] == [] and j['holding'] is None"
req GET /v1/holds
expect "holds: none" 200 "j == {'holds': []}"
req GET '/v1/holds?held=v1'
expect "holds on v1: none" 200 "j == {'holds': []}"
req POST /v1/resources '{"machine":"volume","id":"v9","hold":"v1"}'
expect "create with a hold its op does not declare: 400" 400 \
    "'holds nothing' in j['error']['message']"
req GET /v1/resources/v9
expect "... and nothing was created" 404
req GET /v1/resources/nope
expect "get unknown 404" 404 "j['error']['code'] == 'not_found'"

req POST /v1/resources/v1/step "{\"op_id\":\"$OP\",\"to\":\"scheduling\",\"release\":true}"
expect "step with release" 200 "j['state'] == 'scheduling' and j['owner'] is None"
req POST /v1/resources/v1/claim "{\"op_id\":\"$OP\",\"owner\":\"sched@h1\",\"ttl\":30}"
expect "claim" 200 "j['owner'] == 'sched@h1' and j['op_id'] != '$OP'"
OLD=$OP
OP=$(jget "json.load(sys.stdin)['op_id']")
req POST /v1/resources/v1/step "{\"op_id\":\"$OLD\",\"to\":\"creating_vol\"}"
expect "fenced op_id 409" 409 \
    "j['error']['code'] == 'fenced' and j['error']['current']['op_id'] == '$OP'"
grep -q '^Retry-After: [0-9]' <<<"$HDRS" && ok "409 has Retry-After" ||
    not_ok "409 has Retry-After" "$HDRS"
req POST /v1/resources/v1/renew "{\"op_id\":\"$OP\",\"ttl_ms\":45000}"
expect "renew" 200 "j['op_id'] == '$OP'"
req POST /v1/resources/v1/step "{\"op_id\":\"$OP\",\"to\":\"creating_vol\"}"
expect "step" 200 "j['state'] == 'creating_vol'"
req POST /v1/resources/v1/finish "{\"op_id\":\"$OP\",\"to\":\"available\"}"
expect "finish" 200 "j['state'] == 'available' and j['op'] is None"

req POST /v1/resources/v1/begin '{"op":"extend","owner":"vol@h2"}'
expect "begin" 200 "j['op'] == 'extend'"
OP=$(jget "json.load(sys.stdin)['op_id']")
req POST /v1/resources/v1/begin '{"op":"delete","owner":"api@h1"}'
expect "concurrent begin refused 409 with the current row" 409 \
    "j['error']['code'] == 'conflict' and j['error']['current']['op'] == 'extend' and 'hint' in j['error']"
req POST /v1/resources/v1/fail "{\"op_id\":\"$OP\"}"
expect "fail without reason 422" 422
req POST /v1/resources/v1/fail "{\"op_id\":\"$OP\",\"reason\":\"disk gone\"}"
expect "fail" 200 "j['state'] == 'error_extending'"
req POST /v1/resources/v1/reset-state '{"to":"available","reason":"checked"}'
expect "reset-state" 200 "j['state'] == 'available'"
req POST /v1/resources/v1/reset-state '{"to":"nosuch","reason":"x"}'
expect "reset-state unknown state 400" 400

req GET /v1/resources/v1/history
# 8 rows for 9 transitions: the renew only extended the lease (no row),
# and the version after it skips one.
expect "history" 200 "len(j['history']) == 8 and j['next'] is None and j['history'][0]['request_id'] == 'create-v1' and not [e for e in j['history'] if e['kind'] == 'renew'] and [e['version'] for e in j['history']] == [1, 2, 3, 5, 6, 7, 8, 9]"
req GET '/v1/resources/v1/history?limit=4'
expect "history paged" 200 "len(j['history']) == 4 and j['next'] == j['history'][3]['seq']"
req GET '/v1/resources/v1/history?since=abc'
expect "history bad since 400" 400
req GET /v1/resources/nope/history
expect "history unknown 404" 404

for i in 1 2 3; do
    curl -s -o /dev/null -XPOST -H 'Content-Type: application/json' \
        -d "{\"machine\":\"snapshot\",\"id\":\"s$i\",\"hold\":\"v1\"}" "$URL/v1/resources"
done
req GET '/v1/resources?limit=2'
expect "list paged" 200 "len(j['resources']) == 2 and j['next'] == j['resources'][1]['id']"
req GET "/v1/resources?limit=2&after=$(jget "json.load(sys.stdin)['next']")"
expect "list next page" 200 "len(j['resources']) == 2 and j['next'] is None"
req GET '/v1/resources?machine=snapshot&busy=true'
expect "list filtered" 200 "len(j['resources']) == 3"
req GET '/v1/resources?state=available'
expect "list by state" 200 "[r['id'] for r in j['resources']] == ['v1']"
req GET '/v1/resources?machine=volume&not_state=available'
expect "list not in a state" 200 "'v1' not in [r['id'] for r in j['resources']]"
req GET '/v1/resources?machine=volume&not_state=nope'
expect "list not_state the machine lacks: 400" 400
req GET '/v1/resources?stuck=1'
expect "list stuck" 200 "j['resources'] == []"
req GET '/v1/resources?limit=0'
expect "list bad limit 400" 400
req GET '/v1/resources?busy=maybe'
expect "list bad busy 400" 400

req POST /v1/reap ''
expect "reap" 200 "'examined' in j"
req POST /v1/purge '{"older_than_ms":86400000,"keep_terminal":true}'
expect "purge" 200 "j['history_rows'] == 0"
req POST /v1/purge '{"older_than_ms":"soon"}'
expect "purge bad field 422" 422

# Bad requests.
req POST /v1/resources/v1/begin '{"op":'
expect "malformed JSON 400" 400 "j['error']['code'] == 'bad_json' and 'detail' in j['error']"
req POST /v1/resources/v1/begin '[1]'
expect "not an object 422" 422
req POST /v1/resources/v1/begin '{"op":"delete","colour":"red"}'
expect "unknown field 422" 422
req POST /v1/resources/v1/begin '{"op":1}'
expect "wrong type 422" 422
CODE=$(curl -s -o "$T/.body" -w '%{http_code}' -XPOST -H 'Content-Type: text/plain' \
    -d 'op=delete' "$URL/v1/resources/v1/begin")
[ "$CODE" = 415 ] && ok "wrong content type 415" || not_ok "wrong content type 415" "$CODE"
head -c 70000 /dev/zero | tr '\0' 'a' >"$T/big"
CODE=$(curl -s -o "$T/.body" -w '%{http_code}' -XPOST -H 'Content-Type: application/json' \
    --data-binary @"$T/big" "$URL/v1/resources/v1/begin")
[ "$CODE" = 413 ] && ok "body over the limit 413" || not_ok "body over the limit 413" "$CODE"
CODE=$(curl -s -o "$T/.body" -w '%{http_code}' -XPOST -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$T/big" "$URL/v1/resources/v1/begin")
[ "$CODE" = 413 ] && ok "chunked body over the limit 413" || not_ok "chunked body over the limit 413" "$CODE"
req GET /v2/nothing
expect "unknown route 404" 404 "j['error']['code'] == 'not_found'"
req DELETE /v1/resources/v1
expect "unknown method 405" 405 "j['error']['code'] == 'method_not_allowed'"
grep -q '^Allow: GET, HEAD$' <<<"$HDRS" && ok "405 has Allow" || not_ok "405 has Allow" "$HDRS"
req GET /v1/resources/v1/begin
expect "GET on a transition 405" 405
req GET /v1/resources/v1 '' -H "X-Request-Id: $(printf 'a\tb')"
expect "bad request id 400" 400

# Metrics.
req GET /metrics
for m in 'vse_transitions_total{machine="volume",op="create",kind="create",from="new",to="creating_db"} 1' \
    'vse_refusals_total{reason="conflict"} 1' 'vse_refusals_total{reason="fenced"} 1' \
    'vse_inflight{machine="snapshot",state="creating"} 3' 'vse_expired_leases_total' \
    'vse_store_seconds_bucket{le="+Inf"}' 'vse_http_requests_total{route="transition",code="409"}'; do
    grep -qF "$m" <<<"$BODY" && ok "metric $m" || not_ok "metric $m" "$BODY"
done

# Events: the first 3, then resume after the 2nd with Last-Event-ID.
curl -s -N -m 2 "$URL/v1/events?since=0" >"$T/ev1"
n=$(grep -c '^id: ' "$T/ev1")
[ "$n" -ge 11 ] && ok "events from 0 ($n)" || not_ok "events from 0" "$(head -5 "$T/ev1")"
curl -s -N -m 1 -H 'Last-Event-ID: 10' "$URL/v1/events?since=0" >"$T/ev2"
first=$(sed -n 's/^id: //p' "$T/ev2" | head -1)
[ "$first" = 11 ] && ok "Last-Event-ID resumes after it" ||
    not_ok "Last-Event-ID resumes after it" "$(head -4 "$T/ev2")"
grep -q '^data: {"seq":11,' "$T/ev2" && ok "event data is the history row" ||
    not_ok "event data is the history row" "$(head -4 "$T/ev2")"
# A live watcher sees a transition made after it connected.  The
# deadline is generous (20 s) because a loaded machine may be slow; a
# watcher that is never woken still fails it.
last=$(sed -n 's/^id: //p' "$T/ev1" | tail -1)
curl -s -N -m 30 -H "Last-Event-ID: $last" "$URL/v1/events" >"$T/ev3" &
cpid=$!
for i in $(seq 1 250); do
    grep -q 'events 200' "$T/vsed.log" 2>/dev/null && break
    sleep 0.02
done
curl -s -o /dev/null -XPOST -H 'Content-Type: application/json' \
    -d '{"machine":"volume","id":"live"}' "$URL/v1/resources"
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
    grep -q '"resource":"live"' "$T/ev3" && break
    sleep 0.05
done
grep -q '"resource":"live"' "$T/ev3" && ok "live watcher woken" ||
    not_ok "live watcher woken" "$(cat "$T/ev3")"
kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null

# The snapshots above hold v1, shared, which refuses its extend: they go
# (reset-state ends an op and its hold).
for i in 1 2 3; do
    "$VSECTL" --url "$URL" reset-state "s$i" error --reason "done with s$i" \
        >/dev/null 2>&1 || not_ok "reset-state s$i"
done
req GET /v1/resources/v1
expect "the snapshots' holds on v1 ended" 200 "j['holds'] == []"

# Reaper: a 1 s lease on a 'fail' step runs out; the reaper (every 1 s)
# applies the policy without anyone asking.
req POST /v1/resources/v1/begin '{"op":"extend","owner":"w@h3","ttl_ms":1000}'
expect "begin with a short lease" 200
for i in $(seq 1 250); do
    req GET /v1/resources/v1
    [ "$(jget "json.load(sys.stdin)['owner']")" = None ] && break
    sleep 0.02
done
# extending's expiry policy is retry: the op waits, unowned, for a claim.
expect "reaper expired the lease" 200 "j['owner'] is None and j['op'] == 'extend'"
grep -q 'reaper: 1 expired' "$T/vsed.log" && ok "reaper logged" || not_ok "reaper logged" "$(tail -3 "$T/vsed.log")"
req GET /metrics
grep -q '^vse_expired_leases_total 1$' <<<"$BODY" && ok "expired lease counted" ||
    not_ok "expired lease counted" "$(grep expired <<<"$BODY")"

# What waits, through the API: one expiry of the op so far.
for i in $(seq 1 250); do
    out=$("$VSECTL" --url "$URL" --token admin:admin list --stuck --json 2>&1)
    [ -n "$out" ] && break
    sleep 0.02
done
printf '%s' "$out" | python3 -c 'import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert [(r["id"], r["op"], r["owner"], r["expiries"]) for r in rows] == [("v1", "extend", None, 1)], rows' &&
    ok "list --stuck over /v1: the waiting extend, 1 expiry" ||
    not_ok "list --stuck over /v1" "$out"

# The retry budget (issue 14): the extend now waits, unowned, for a
# volume host that never comes.  Eleven minutes later, as the store sees
# it (the op became unowned at lease_expires - lease_ttl), the reaper
# ends it in error_extending without anyone asking.
python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
c.execute("UPDATE resources SET lease_expires = lease_expires - 660000000 WHERE id = ?", ("v1",))
c.commit()' "$T/s.db"
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
    req GET /v1/resources/v1
    [ "$(jget "json.load(sys.stdin)['state']")" = error_extending ] && break
    sleep 0.1
done
expect "reaper ended the unclaimed extend in its failure state" 200 \
    "j['state'] == 'error_extending' and j['op'] is None"
grep -q 'reaper: .*, 1 not claimed in time' "$T/vsed.log" &&
    ok "reaper logged the unclaimed end" ||
    not_ok "reaper logged the unclaimed end" "$(grep reaper: "$T/vsed.log")"
req GET /v1/resources/v1/history
expect "history says why" 200 \
    "j['history'][-1]['kind'] == 'expire' and j['history'][-1]['reason'].startswith('handed back 11m')"

# A renew writes a history row only with a reason.
req POST /v1/resources '{"machine":"volume","id":"rn1","owner":"api@h1"}'
expect "create rn1" 201
RN=$(jget "json.load(sys.stdin)['op_id']")
req POST /v1/resources/rn1/renew "{\"op_id\":\"$RN\"}"
expect "renew without a reason" 200 "j['version'] == 2"
req POST /v1/resources/rn1/renew "{\"op_id\":\"$RN\",\"reason\":\"task x: start\"}"
expect "renew with a reason" 200 "j['version'] == 3"
req POST /v1/resources/rn1/renew "{\"op_id\":\"$RN\",\"reason\":7}"
expect "renew reason not a string 422" 422
req GET /v1/resources/rn1/history
expect "only the renew with a reason is in the history" 200 \
    "[(e['kind'], e['version'], e['reason']) for e in j['history']] == [('create', 1, None), ('renew', 3, 'task x: start')]"

# Every request got one log line with its id, method, route, status, µs.
grep -qE 'req=create-v1 POST resources 201 [0-9]+us' "$T/vsed.log" &&
    ok "request log line" || not_ok "request log line" "$(head -12 "$T/vsed.log")"

stop_vsed
[ "$STOP_RC" = 0 ] && ok "SIGTERM: exit 0" || not_ok "SIGTERM: exit 0" "rc $STOP_RC"
grep -q 'stopped; store closed' "$T/vsed.log" && ok "store closed on stop" ||
    not_ok "store closed on stop" "$(tail -3 "$T/vsed.log")"
finish
