/*
 * main.c - vsed, the enforcer as a service: options and config, the
 * safety checks made before listening (no noauth off loopback), the
 * threads (HTTP pool, event notifier, reaper), and the graceful shutdown
 * on SIGTERM or SIGINT.  `vsed hash-token` makes a config's token hash.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "names.h"
#include "vsed.h"

#define GRACE_MS 10000

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: vsed [--store URL] [--listen ADDR:PORT] [--config FILE]\n"
        "            [--auth token|noauth] [--reaper-interval SECONDS]\n"
        "            [--role api|scheduler|volume|reaper]... [--all-in-one]\n"
        "            [--host NAME] [--pool DIR] [--capacity-gb N] [--lease-ms MS]\n"
        "            [--volume-workers N]\n"
        "            [--coordination enforcer|local-locks] [--lock-dir DIR]\n"
        "       vsed hash-token < TOKEN_FILE\n"
        "\n"
        "vsed serves the volume state enforcer over HTTP/JSON: resources, their\n"
        "transitions, history, machines, an event stream (server-sent events),\n"
        "Prometheus metrics and a health check.  It also runs the reaper, which\n"
        "applies each machine's expiry policy to leases that ran out.\n"
        "\n"
        "Options (each overrides the config file):\n"
        "      --store URL        the store (default %s)\n"
        "      --listen ADDR:PORT where to listen (default %s; port 0 picks a\n"
        "                         free one, printed at start).  Only the api role\n"
        "                         and --all-in-one listen by default; a process\n"
        "                         without the api role listens (for /healthz and\n"
        "                         /metrics) only when this is given.  A port in use\n"
        "                         ends the start before anything is registered\n"
        "      --config FILE      YAML: listen, store, auth, reaper_interval,\n"
        "                         volume_workers, limits, tokens (see\n"
        "                         docs/api.md)\n"
        "      --auth MODE        token (default): every route but /healthz needs\n"
        "                         a configured token; noauth: everyone is admin,\n"
        "                         refused unless listening on loopback\n"
        "      --reaper-interval S  seconds between reaper runs (default 10;\n"
        "                         0 turns the reaper off)\n"
        "      --role R         run role R (repeat, or a comma list): api (HTTP:\n"
        "                         /v1 and the Cinder v3 API), scheduler, volume (a\n"
        "                         volume host's manager), reaper.  Default: api and\n"
        "                         reaper.  Several roles on one host: start each\n"
        "                         with --role R --store URL; only the api needs a\n"
        "                         port\n"
        "      --all-in-one       every role, one volume host named after this\n"
        "                         machine on ./var/pool\n"
        "      --host NAME        this process's host name in services and in\n"
        "                         volumes' attrs.host (default: the hostname)\n"
        "      --pool DIR         volume role: the pool directory (./var/pool)\n"
        "      --capacity-gb N    volume role: GiB the pool may hold (1000)\n"
        "      --volume-workers N volume role: driver jobs carried at once, each\n"
        "                         by a thread with its own store connection\n"
        "                         (1 to 64, default 1)\n"
        "      --lease-ms MS      lease of a worker's step (default 30000)\n"
        "      --coordination M   enforcer (default): every transition is an\n"
        "                         atomic compare-and-swap checked against the\n"
        "                         machine's table.  local-locks: what vse replaces,\n"
        "                         for side-by-side runs only (docs/reliability.md):\n"
        "                         status read, then written blindly; op_ids fence\n"
        "                         nothing; no reaper; the volume role holds a file\n"
        "                         lock (flock) per volume and manager function in\n"
        "                         --lock-dir, as Cinder does.  Never on a store that\n"
        "                         matters\n"
        "      --lock-dir DIR     local-locks: where the lock files are (default\n"
        "                         /run/lock/vsed; one directory per host)\n"
        "  -h, --help             this help\n"
        "      --version          print the version\n"
        "\n"
        "Tokens: the config lists {name, hash, role}; hash is 'sha256:HEX' of the\n"
        "token, printed by 'vsed hash-token' from the token on stdin.  Roles:\n"
        "reader (GET), member (transitions), admin (reset-state, reap, purge).\n"
        "Clients send 'Authorization: Bearer TOKEN' or 'X-Auth-Token: TOKEN'.\n"
        "\n"
        "Signals: SIGTERM or SIGINT stop accepting connections, let requests in\n"
        "flight finish (up to %d s), end event streams and close the store; a\n"
        "store that is unreachable then is not waited for.\n"
        "\n"
        "Exit status: 0 stopped by a signal, 1 cannot start (store, address),\n"
        "2 usage or bad config.\n"
        "\n"
        "Example:\n"
        "  vsed --store sqlite:./var/vse.db --listen 127.0.0.1:8776 \\\n"
        "       --config /etc/vse/vsed.yaml\n"
        "  vsed --role scheduler --store sqlite:./var/vse.db     # no port\n",
        VSED_DEFAULT_STORE, VSED_DEFAULT_LISTEN, GRACE_MS / 1000);
}

static int hash_token(void)
{
    char buf[4096], out[80];
    size_t n = fread(buf, 1, sizeof(buf), stdin);

    if (!feof(stdin)) {
        fprintf(stderr,
                "vsed: token on stdin is too long (over %zu "
                "bytes)\n",
                sizeof(buf) - 1);
        return 2;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0) {
        fprintf(stderr, "vsed: no token on stdin\n");
        return 2;
    }
    vsed_hash_token(buf, n, out, sizeof(out));
    printf("%s\n", out);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* 1000 concurrent connections need more descriptors than the usual 1024
 * soft limit leaves once the store and the pool have theirs. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

enum {
    O_STORE = 0x100,
    O_LISTEN,
    O_CONFIG,
    O_AUTH,
    O_REAPER,
    O_VERSION,
    O_ROLE,
    O_AIO,
    O_HOST,
    O_POOL,
    O_CAPACITY,
    O_LEASE,
    O_WORKERS,
    O_COORD,
    O_LOCKDIR
};

/* "api,volume" into service bits; 0 if a name is unknown. */
static unsigned parse_roles(const char *s)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"api", SVC_API},
                 {"scheduler", SVC_SCHEDULER},
                 {"volume", SVC_VOLUME},
                 {"reaper", SVC_REAPER}};
    unsigned bits = 0;
    char buf[256], *tok, *save = NULL;

    snprintf(buf, sizeof(buf), "%s", s);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        unsigned b = 0;

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strcmp(tok, names[i].name) == 0)
                b = names[i].bit;
        if (b == 0)
            return 0;
        bits |= b;
    }
    return bits;
}

static int parse_num(const char *opt, const char *s, long long min,
                     long long max, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (s[0] < '0' || s[0] > '9' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "vsed: %s '%s' must be a number from %lld to %lld\n",
                opt, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"store", required_argument, NULL, O_STORE},
        {"listen", required_argument, NULL, O_LISTEN},
        {"config", required_argument, NULL, O_CONFIG},
        {"auth", required_argument, NULL, O_AUTH},
        {"reaper-interval", required_argument, NULL, O_REAPER},
        {"role", required_argument, NULL, O_ROLE},
        {"all-in-one", no_argument, NULL, O_AIO},
        {"host", required_argument, NULL, O_HOST},
        {"pool", required_argument, NULL, O_POOL},
        {"capacity-gb", required_argument, NULL, O_CAPACITY},
        {"lease-ms", required_argument, NULL, O_LEASE},
        {"volume-workers", required_argument, NULL, O_WORKERS},
        {"coordination", required_argument, NULL, O_COORD},
        {"lock-dir", required_argument, NULL, O_LOCKDIR},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0}};
    const char *store = NULL, *listen = NULL, *config = NULL, *auth = NULL;
    const char *reaper = NULL, *host = NULL, *pool = NULL;
    const char *capacity = NULL, *lease = NULL, *coord = NULL;
    const char *workers = NULL;
    const char *lockdir = NULL;
    unsigned services = 0;
    int aio = 0;
    struct vsed_config c;
    struct vse_error err;
    char msg[1024];
    sigset_t set;
    vse_db *db;
    int64_t seq = 0;
    int loopback = 0, serve_http, sig = 0, opt;

    if (argc >= 2 && strcmp(argv[1], "hash-token") == 0)
        return hash_token();
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (opt) {
        case O_STORE: store = optarg; break;
        case O_LISTEN: listen = optarg; break;
        case O_CONFIG: config = optarg; break;
        case O_AUTH: auth = optarg; break;
        case O_REAPER: reaper = optarg; break;
        case O_ROLE: {
            unsigned b = parse_roles(optarg);

            if (b == 0) {
                fprintf(stderr,
                        "vsed: --role '%s': roles are api, "
                        "scheduler, volume and reaper\n",
                        optarg);
                return 2;
            }
            services |= b;
            break;
        }
        case O_AIO: aio = 1; break;
        case O_HOST: host = optarg; break;
        case O_POOL: pool = optarg; break;
        case O_CAPACITY: capacity = optarg; break;
        case O_LEASE: lease = optarg; break;
        case O_WORKERS: workers = optarg; break;
        case O_COORD: coord = optarg; break;
        case O_LOCKDIR: lockdir = optarg; break;
        case 'h': usage(stdout); return 0;
        case O_VERSION: printf("vsed %s\n", VSE_VERSION_STRING); return 0;
        case ':':
            fprintf(stderr,
                    "vsed: option '%s' needs a value\nTry 'vsed "
                    "--help'.\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr,
                    "vsed: unknown option '%s'\nTry 'vsed "
                    "--help'.\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "vsed: unexpected argument '%s'\nTry 'vsed "
                "--help'.\n",
                argv[optind]);
        return 2;
    }

    vsed_config_init(&c);
    vse_error_clear(&err);
    if (config != NULL && vsed_config_load(&c, config, &err) < 0) {
        fprintf(stderr, "vsed: %s\n", err.msg);
        vsed_config_release(&c);
        return 2;
    }
    if (store != NULL)
        snprintf(c.store, sizeof(c.store), "%s", store);
    if (listen != NULL) {
        snprintf(c.listen, sizeof(c.listen), "%s", listen);
        c.listen_set = 1;
    }
    if (auth != NULL) {
        if (strcmp(auth, "token") != 0 && strcmp(auth, "noauth") != 0) {
            fprintf(stderr, "vsed: --auth must be token or noauth\n");
            vsed_config_release(&c);
            return 2;
        }
        c.auth = strcmp(auth, "token") == 0;
    }
    if (reaper != NULL) {
        char *end;
        long v = strtol(reaper, &end, 10);

        if (reaper[0] < '0' || reaper[0] > '9' || *end != '\0' || v > 86400) {
            fprintf(stderr,
                    "vsed: --reaper-interval '%s' must be 0 to 86400 "
                    "seconds\n",
                    reaper);
            vsed_config_release(&c);
            return 2;
        }
        c.reaper_interval = (int)v;
    }
    c.services = aio ? SVC_ALL : services ? services : SVC_API | SVC_REAPER;
    /* Without --role vsed is the plain enforcer service it was before
     * roles existed: no service rows of its own in the store. */
    c.heartbeat = aio || services != 0;
    if (host != NULL) {
        if (vse_check_id("host", host, NULL) != 0 ||
            strlen(host) > VSE_NAME_MAX || strchr(host, '@') != NULL) {
            fprintf(stderr, "vsed: --host '%s' is not a valid host name\n",
                    host);
            vsed_config_release(&c);
            return 2;
        }
        snprintf(c.host, sizeof(c.host), "%s", host);
    }
    if (pool != NULL)
        snprintf(c.pool, sizeof(c.pool), "%s", pool);
    if ((capacity != NULL && parse_num("--capacity-gb", capacity, 1,
                                       INT64_C(1) << 40, &c.capacity_gb)) ||
        (lease != NULL && parse_num("--lease-ms", lease, 100,
                                    INT64_C(86400000), &c.lease_ms))) {
        vsed_config_release(&c);
        return 2;
    }
    if (workers != NULL) {
        int64_t n;

        if (parse_num("--volume-workers", workers, 1, 64, &n)) {
            vsed_config_release(&c);
            return 2;
        }
        c.volume_workers = (int)n;
    }
    if (coord != NULL) {
        if (strcmp(coord, "enforcer") != 0 &&
            strcmp(coord, "local-locks") != 0) {
            fprintf(stderr,
                    "vsed: --coordination '%s': it is enforcer or "
                    "local-locks\n",
                    coord);
            vsed_config_release(&c);
            return 2;
        }
        c.local_locks = strcmp(coord, "local-locks") == 0;
    }
    if (lockdir != NULL) {
        if (lockdir[0] == '\0' || strlen(lockdir) >= sizeof(c.lock_dir)) {
            fprintf(stderr,
                    "vsed: --lock-dir '%s' is not a directory "
                    "path\n",
                    lockdir);
            vsed_config_release(&c);
            return 2;
        }
        snprintf(c.lock_dir, sizeof(c.lock_dir), "%s", lockdir);
    }
    if (c.local_locks && vsed_store_blind_register() != 0) {
        fprintf(stderr, "vsed: cannot register the local-locks store "
                        "wrapper\n");
        vsed_config_release(&c);
        return 1;
    }
    if (c.local_locks && (c.services & SVC_VOLUME) &&
        vsed_locks_init(c.lock_dir, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "vsed: %s\n", msg);
        vsed_config_release(&c);
        return 1;
    }
    /* Cinder has no leases to reap: a crashed manager's volumes stay
     * where they were until an operator resets them. */
    if (!(c.services & SVC_REAPER) || c.local_locks)
        c.reaper_interval = 0;
    if (vsed_listen_is_loopback(c.listen, &loopback) != 0) {
        fprintf(stderr, "vsed: listen address '%s' is not ADDR:PORT\n",
                c.listen);
        vsed_config_release(&c);
        return 2;
    }
    if (!c.auth && !loopback) {
        fprintf(stderr,
                "vsed: refusing to listen on '%s' with noauth: "
                "anyone who can connect would be admin\n  hint: "
                "listen on 127.0.0.1, or use --auth token with "
                "tokens in the config\n",
                c.listen);
        vsed_config_release(&c);
        return 2;
    }
    /* Only the API serves HTTP by default: a scheduler, reaper or volume
     * role beside it needs no port (its /healthz and /metrics only on an
     * explicit listen).  Bind before anything is registered, so that a
     * port in use ends the start here, with nothing left behind. */
    serve_http = (c.services & SVC_API) || c.listen_set;
    if (serve_http && vsed_http_bind(&c, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "vsed: %s\n", msg);
        vsed_config_release(&c);
        return 1;
    }

    vsed_cfg = &c;
    /* Every thread inherits this mask: only sigwait() below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    if (config != NULL)
        vsed_log("config %s", config);
    if (c.local_locks)
        vsed_log("coordination: LOCAL-LOCKS (for comparison only): status "
                 "reads and blind writes, no fencing, no reaper; file locks "
                 "in %s",
                 c.lock_dir);
    if (!c.auth)
        vsed_log("authentication is OFF (--auth noauth): every caller is "
                 "admin; loopback only");
    else
        vsed_log("authentication: token (%d token%s configured%s)", c.ntokens,
                 c.ntokens == 1 ? "" : "s",
                 c.ntokens == 0 ? "; every route but /healthz answers 401"
                                : "");
    /* Open once first: a bad store fails the start, not the first
     * request, and a new SQLite file gets its schema from one handle.
     * Built-in machines newer than the store's pins are upgraded first
     * (on the store itself: the local-locks wrapper has no re-pin). */
    vse_error_clear(&err);
    if (vsed_upgrade_machines(c.store, &err) < 0 ||
        vsed_open(c.store, &db, &err) < 0) {
        fprintf(stderr, "vsed: %s\n", err.msg);
        if (err.detail[0])
            fprintf(stderr, "  detail: %s\n", err.detail);
        if (err.hint[0])
            fprintf(stderr, "  hint: %s\n", err.hint);
        vsed_config_release(&c);
        return 1;
    }
    /* The code's state names against the machines the store has: a
     * mismatch stops here, not as a wrong answer later. */
    if (vsed_names_check(vsed_find_in_db, db, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "vsed: %s\n", msg);
        vsed_close(db);
        vsed_config_release(&c);
        return 2;
    }
    vsed_close(db);
    vsed_store_url = c.store;
    vsed_log("store %s", c.store);
    if (vsed_events_start(c.store, &seq) != 0 ||
        vsed_reaper_start(c.store, c.reaper_interval) != 0) {
        vsed_events_stop();
        vsed_config_release(&c);
        return 1;
    }
    if (c.reaper_interval > 0)
        vsed_log("reaper every %d s", c.reaper_interval);
    vsed_log("roles:%s%s%s%s; host %s", c.services & SVC_API ? " api" : "",
             c.services & SVC_SCHEDULER ? " scheduler" : "",
             c.services & SVC_VOLUME ? " volume" : "",
             c.services & SVC_REAPER ? " reaper" : "", c.host);
    if (!serve_http)
        vsed_log("no HTTP: no api role and no --listen");
    if (vsed_services_start(&c) != 0 || (serve_http && vsed_http_start(&c))) {
        vsed_services_stop();
        vsed_reaper_stop();
        vsed_events_stop();
        vsed_config_release(&c);
        return 1;
    }

    sigwait(&set, &sig);
    vsed_http_quiesce();
    vsed_log("%s: stopping: no new connections; finishing requests in "
             "flight",
             sig == SIGTERM ? "SIGTERM" : "SIGINT");
    atomic_store(&vsed_stopping, 1);
    /* With the store away every call would wait out its reconnect budget
     * (10 s each) and a stop could take a minute: stop waiting now. */
    vsed_stores_interrupt();
    /* Event streams never finish by themselves: end them first. */
    vsed_events_stop();
    vsed_http_drain(GRACE_MS);
    vsed_http_stop();
    vsed_services_stop();
    vsed_reaper_stop();
    vsed_metrics_release();
    vsed_config_release(&c);
    vsed_log("stopped; store closed");
    return 0;
}
