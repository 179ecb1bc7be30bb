# zk.sh - throwaway ZooKeeper servers for tests and benchmarks; source it.
#
#   zk_start            one standalone member on 127.0.0.1:<free port>
#   zk_ensemble_start N N members (3 or 5) on loopback, each with its own
#                       client, quorum and election port; returns once a
#                       leader serves and every member has joined
#   zk_leader           print the number (1..N) of the member that leads
#                       (1 for a standalone member); fails if none does
#   zk_wait_leader [S]  wait up to S seconds (default 30) for a leader that
#                       serves, print its number
#   zk_kill N           kill -9 member N and wait until it is gone
#   zk_restart N        start member N again (same port, same data) and
#                       wait until it serves
#   zk_stop_all         stop every member (TERM, then KILL), keep the dir
#   zk_cleanup          stop everything and remove the temp dir; set as an
#                       EXIT trap by the start functions (a caller with its
#                       own trap calls it there)
#
# Both starters export
#   VSE_ZK_URL  zookeeper://127.0.0.1:P1[,127.0.0.1:P2...]/vse-test-RANDOM
#               (the chroot is fresh; the store creates it on open)
#   ZK_HOSTS    127.0.0.1:P1[,...]     ZK_PORTS "P1 [P2 ...]"
#   ZK_PIDS     "PID1 [PID2 ...]" (0 for a killed member)
#   ZK_DIR      the temp dir (member N's data, config and log in ZK_DIR/N)
#   ZK_N        the number of members
#
# The servers run the Debian package's jars directly (no zkServer.sh, no
# /etc/zookeeper), fsync on, the admin HTTP server off (it would take
# port 8080), the four-letter words srvr, stat, ruok, mntr and conf on.
# Readiness is polled with "srvr" against a deadline: the JVM needs a few
# seconds to start, an ensemble a few more to elect (ZK_START_TIMEOUT:
# the limit, default 60 s times VSE_TEST_TIMEOUT_MULTIPLIER).  ZK_HEAP
# (default 256m) sets each member's heap.

ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}

# Under LeakSanitizer, the C client's own leak on a lost multi is not
# vse's (see the file).
LSAN_OPTIONS="suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan-zookeeper.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

# Ports below the kernel's ephemeral range: a leader binds its quorum
# port only when it is elected, and an outgoing connection (a client's
# session, another member's election channel) may have been given that
# very port as its own end meanwhile.  Seen in CI: the new leader failed
# to bind, went back to LOOKING and was elected again, in a loop, for as
# long as the connection lived (over 60 s once), so the ensemble had no
# leader.
zk__free_port() {
    local p i low
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [ "${low:-0}" -gt 12000 ] 2>/dev/null || low=32768
    for i in $(seq 1 50); do
        p=$((10000 + RANDOM % (low - 10000)))
        # Nothing answers on it and no other member of ours uses it: free
        # enough (a member that cannot bind exits, and the start retries).
        case " ${zk__taken:-} " in *" $p "*) continue ;; esac
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            zk__taken="${zk__taken:-} $p"
            echo "$p"
            return 0
        fi
    done
    return 1
}

# zk__4lw PORT WORD: the member's answer to a four-letter word (empty when
# it does not answer within a few seconds).
zk__4lw() {
    timeout 5 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
        printf "%s" "$2" >&3
        cat <&3' zk4lw "$1" "$2" 2>/dev/null
}

# zk__mode N: "leader", "follower", "standalone" or "" (not serving).
zk__mode() {
    local port=${zk__port[$1]}
    zk__4lw "$port" srvr | sed -n 's/^Mode: //p'
}

zk__alive() {
    local pid=${zk__pid[$1]:-0}
    [ "$pid" -gt 0 ] && kill -0 "$pid" 2>/dev/null
}

zk__export() {
    local i hosts='' ports='' pids=''
    for i in $(seq 1 "$ZK_N"); do
        hosts="$hosts${hosts:+,}127.0.0.1:${zk__port[$i]}"
        ports="$ports${ports:+ }${zk__port[$i]}"
        pids="$pids${pids:+ }${zk__pid[$i]:-0}"
    done
    ZK_HOSTS=$hosts
    ZK_PORTS=$ports
    ZK_PIDS=$pids
    VSE_ZK_URL="zookeeper://$ZK_HOSTS/$zk__chroot"
    export VSE_ZK_URL ZK_HOSTS ZK_PORTS ZK_PIDS ZK_DIR ZK_N
}

# zk__config N: write member N's config (and myid in an ensemble).
zk__config() {
    local n=$1 d=$ZK_DIR/$1 i
    mkdir -p "$d/data"
    {
        # A short tick: a killed leader is noticed, and a new one elected
        # and synced, in a second or two instead of ten.  Sessions may
        # still ask for up to a minute.
        echo "tickTime=500"
        echo "initLimit=20"
        echo "syncLimit=10"
        echo "minSessionTimeout=1000"
        echo "maxSessionTimeout=60000"
        echo "dataDir=$d/data"
        echo "clientPort=${zk__port[$n]}"
        echo "clientPortAddress=127.0.0.1"
        echo "maxClientCnxns=0"
        echo "forceSync=yes"
        # 4 MB log files instead of 64 MB: the tests write little.
        echo "preAllocSize=4096"
        echo "admin.enableServer=false"
        echo "4lw.commands.whitelist=srvr,stat,ruok,mntr,conf"
        if [ "$ZK_N" -gt 1 ]; then
            echo "reconfigEnabled=false"
            echo "standaloneEnabled=false"
            echo "electionPortBindRetry=10"
            for i in $(seq 1 "$ZK_N"); do
                echo "server.$i=127.0.0.1:${zk__qport[$i]}:${zk__eport[$i]}"
            done
        fi
    } >"$d/zoo.cfg"
    [ "$ZK_N" -gt 1 ] && echo "$n" >"$d/data/myid"
    return 0
}

# zk__launch N: start member N's JVM in the background, record its pid.
zk__launch() {
    local n=$1 d=$ZK_DIR/$1
    # slf4j-simple logs to stderr, i.e. to the member's log file.
    java -Xmx"${ZK_HEAP:-256m}" -Xms32m -XX:+UseSerialGC \
        -XX:-UsePerfData -Djava.awt.headless=true \
        -Dzookeeper.admin.enableServer=false -Dzookeeper.jmx.log4j.disable=true \
        -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
        -Dorg.slf4j.simpleLogger.showDateTime=true \
        -cp "$ZK_JAR:/usr/share/java/slf4j-simple.jar" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
        </dev/null >>"$d/log" 2>&1 &
    zk__pid[$n]=$!
}

# Seconds a start may take: ZK_START_TIMEOUT, or 60 times the test
# runner's multiplier (a JVM on a loaded machine is slow to start).
zk__start_timeout() {
    awk -v t="${ZK_START_TIMEOUT:-}" -v m="${VSE_TEST_TIMEOUT_MULTIPLIER:-1}" \
        'BEGIN { if (t + 0 > 0) print int(t); else print int(60 * (m + 0 > 0 ? m : 1) + 0.999) }'
}

# zk__wait_serving DEADLINE N...: wait until every member named serves
# (leader, follower or standalone); 1 if one dies or the deadline passes.
zk__wait_serving() {
    local deadline=$1 n mode pending
    shift
    while :; do
        pending=
        for n in "$@"; do
            zk__alive "$n" || return 2
            mode=$(zk__mode "$n")
            [ -n "$mode" ] || pending="$pending $n"
        done
        [ -z "$pending" ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

zk__start_members() {
    local count=$1 tries=0 i rc
    zk__chroot="vse-test-$RANDOM$RANDOM"
    ZK_N=$count
    ZK_DIR=$(mktemp -d /tmp/vse-zk.XXXXXX) || return 1
    trap zk_cleanup EXIT
    # bash runs EXIT traps on exit, not when a signal kills it: make the
    # runner's timeout (TERM) and ^C (INT) exits, so that no server
    # outlives its test (a caller's own EXIT trap then runs too).
    trap 'exit 143' TERM
    trap 'exit 130' INT
    if ! command -v java >/dev/null || [ ! -r "$ZK_JAR" ]; then
        echo "zk.sh: ZooKeeper server not found (apt-get install zookeeper)" >&2
        return 1
    fi
    while :; do
        zk__taken=
        for i in $(seq 1 "$count"); do
            zk__port[$i]=$(zk__free_port) || return 1
            if [ "$count" -gt 1 ]; then
                zk__qport[$i]=$(zk__free_port) || return 1
                zk__eport[$i]=$(zk__free_port) || return 1
            fi
        done
        for i in $(seq 1 "$count"); do
            rm -rf "${ZK_DIR:?}/$i"
            zk__config "$i"
            zk__launch "$i"
        done
        rc=0
        zk__wait_serving $(($(date +%s) + $(zk__start_timeout))) \
            $(seq 1 "$count") || rc=$?
        [ $rc -eq 0 ] && break
        # A member died (a port taken since we chose it) or nobody served
        # in time: stop them all and try again on other ports.
        zk__stop_members
        tries=$((tries + 1))
        if [ $rc -eq 1 ] || [ $tries -ge 3 ]; then
            echo "zk.sh: ZooKeeper does not start:" >&2
            for i in $(seq 1 "$count"); do
                tail -15 "$ZK_DIR/$i/log" | sed "s/^/member $i: /" >&2
            done
            return 1
        fi
    done
    zk__export
}

zk_start() {
    zk__start_members 1
}

zk_ensemble_start() {
    local n=${1:-3}
    if [ "$n" -lt 3 ] || [ $((n % 2)) -eq 0 ]; then
        echo "zk.sh: an ensemble has an odd number of members, at least 3" >&2
        return 1
    fi
    zk__start_members "$n"
}

zk_leader() {
    local i mode
    for i in $(seq 1 "${ZK_N:-0}"); do
        zk__alive "$i" || continue
        mode=$(zk__mode "$i")
        if [ "$mode" = leader ] || [ "$mode" = standalone ]; then
            echo "$i"
            return 0
        fi
    done
    return 1
}

zk_wait_leader() {
    local deadline=$(($(date +%s) + ${1:-30}))
    while :; do
        zk_leader && return 0
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

zk_kill() {
    local n=${1:?usage: zk_kill N} pid i
    pid=${zk__pid[$n]:-0}
    [ "$pid" -gt 0 ] || return 0
    kill -9 "$pid" 2>/dev/null || true
    # Our own child: wait reaps it; the loop covers a subshell's caller.
    wait "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    zk__pid[$n]=0
    zk__export
}

zk_restart() {
    local n=${1:?usage: zk_restart N}
    zk__alive "$n" && return 0
    zk__launch "$n"
    zk__export
    if ! zk__wait_serving $(($(date +%s) + $(zk__start_timeout))) "$n"; then
        echo "zk.sh: member $n does not serve again:" >&2
        tail -15 "$ZK_DIR/$n/log" >&2
        return 1
    fi
}

zk__stop_members() {
    local i pid
    for i in $(seq 1 "${ZK_N:-0}"); do
        pid=${zk__pid[$i]:-0}
        # A member that died by itself is gone already: not an error
        # (and under set -e it must not end the caller).
        [ "$pid" -gt 0 ] && { kill -TERM "$pid" 2>/dev/null || true; }
    done
    for i in $(seq 1 "${ZK_N:-0}"); do
        pid=${zk__pid[$i]:-0}
        [ "$pid" -gt 0 ] || continue
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        zk__pid[$i]=0
    done
    return 0
}

zk_stop_all() {
    zk__stop_members
    [ -n "${ZK_N:-}" ] && zk__export
    return 0
}

zk_cleanup() {
    zk__stop_members
    # ZK_KEEP=DIR: keep the members' data and logs there (debugging).
    [ -n "${ZK_DIR:-}" ] && [ -n "${ZK_KEEP:-}" ] &&
        mkdir -p "$ZK_KEEP" && cp -a "$ZK_DIR" "$ZK_KEEP/"
    [ -n "${ZK_DIR:-}" ] && rm -rf "$ZK_DIR"
    ZK_DIR=
}
