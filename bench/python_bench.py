#!/usr/bin/python3
"""
python_bench.py - one client's transitions per second from Python, as one
JSON line, for bench/python.sh to compare in the same run:

  vse URL SECONDS      the binding, running vsectl bench's cycle (get, then
                       attach: begin, step, finish; or detach: begin,
                       finish) on volume bench-0
  cinder PATH SECONDS  Cinder's own conditional_update (python3-cinder,
                       cinder.db.sqlalchemy.api) flipping one volume's
                       status available <-> attaching on a SQLite file in
                       WAL mode with synchronous=FULL, like vse's; Cinder
                       writes no history row, vse writes one per transition
"""
import json
import os
import sys
import time
import uuid


def bench_vse(url, seconds):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir,
                                    "python"))
    import vse
    st = vse.open(url)
    rid = "bench-0"
    try:
        st.get(rid)
    except vse.NotFound:
        op = st.create("volume", rid)
        for s in ("scheduling", "creating_vol"):
            st.step(rid, op, s)
        st.finish(rid, op, "available")
    owner = "pybench@%d" % os.getpid()
    n = 0
    lat = []
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        row = st.get(rid)
        attach = row["state"] == "available"
        a = time.monotonic()
        op = st.begin(rid, "attach" if attach else "detach", owner=owner)
        n += 1
        if attach:
            st.step(rid, op, "attaching")
            n += 1
        st.finish(rid, op, "in_use" if attach else "available")
        n += 1
        lat.append((time.monotonic() - a) / (3 if attach else 2))
    el = time.monotonic() - t0
    lat.sort()
    st.close()
    return {"engine": "vse-python", "store": url, "transitions": n,
            "transitions_per_s": n / el,
            "p50_us": int(lat[len(lat) // 2] * 1e6) if lat else 0}


def bench_cinder(path, seconds):
    from oslo_config import cfg
    from sqlalchemy import event
    from cinder import context
    from cinder.db.sqlalchemy import api, models

    conf = cfg.CONF
    conf([], project="cinder", default_config_files=[])
    conf.set_override("connection", "sqlite:///" + os.path.abspath(path),
                      group="database")
    engine = api.get_engine()

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, rec):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    engine.dispose()
    # Cinder builds its schema with migrations; the volumes table is all
    # conditional_update touches (workers' composite autoincrement key is
    # MySQL-only, so it is left out).
    tables = [t for t in models.BASE.metadata.sorted_tables
              if t.name != "workers"]
    models.BASE.metadata.create_all(engine, tables=tables)
    ctx = context.get_admin_context()
    vid = str(uuid.uuid4())
    api.volume_create(ctx, {"id": vid, "status": "available", "size": 1,
                            "volume_type_id": str(uuid.uuid4())})
    cur = "available"
    n = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        nxt = "attaching" if cur == "available" else "available"
        if not api.conditional_update(ctx, models.Volume, {"status": nxt},
                                      {"status": cur},
                                      filters=[models.Volume.id == vid]):
            raise SystemExit("python_bench: conditional_update lost on an "
                             "uncontended volume")
        cur = nxt
        n += 1
    el = time.monotonic() - t0
    with engine.connect() as c:
        mode = c.exec_driver_sql("PRAGMA journal_mode").scalar()
    return {"engine": "cinder-conditional_update", "store": "sqlite:" + path,
            "journal_mode": mode, "transitions": n,
            "transitions_per_s": n / el}


def main(argv):
    if len(argv) != 3 or argv[0] not in ("vse", "cinder"):
        sys.exit("usage: python_bench.py vse URL SECONDS | "
                 "cinder PATH SECONDS")
    secs = float(argv[2])
    r = bench_vse(argv[1], secs) if argv[0] == "vse" else \
        bench_cinder(argv[1], secs)
    print(json.dumps(r))


if __name__ == "__main__":
    main(sys.argv[1:])
