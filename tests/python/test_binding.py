"""
test_binding.py - the Python binding against real stores: the error
table, the struct layouts, and the conformance subset (flow, refusal with
the current row, fencing after a reset, idempotent repeats, not found,
watch), with vsectl --json as the reference for every dict's keys.
"""
import json
import os
import re
import subprocess
import threading
import time

import pytest

import vse
from vse import _lib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VSE_BUILD", os.path.join(ROOT, "build"))
VSECTL = os.path.join(BUILD, "vsectl")


def vsectl(url, *args):
    p = subprocess.run([VSECTL, "--store", url] + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def run_flow(st, rid):
    op = st.create("volume", rid, owner="t", reason="test")
    st.step(rid, op, "scheduling")
    st.step(rid, op, "creating_vol")
    return st.finish(rid, op)


# ---- the error table ---------------------------------------------------

def header_table():
    text = open(os.path.join(ROOT, "include", "vse.h")).read()
    rows = re.findall(r'XX\((\w+),\s*(-\d+),\s*(\d),\s*(\d+),\s*"([^"]*)"\)',
                      text)
    return {int(c): ("VSE_" + n, int(x), int(h), m) for n, c, x, h, m in rows}


def test_every_c_error_has_its_class():
    table = header_table()
    assert len(table) >= 15
    classes = vse.errors.classes()
    assert sorted(classes) == sorted(table)
    for code, (name, exit_status, http, msg) in table.items():
        cls = classes[code]
        assert issubclass(cls, vse.Error)
        assert (cls.code, cls.name, cls.exit_status, cls.http_status) == \
            (code, name, exit_status, http)
        assert cls().message == msg


def test_issue_names_exist():
    for name, code in [("Invalid", -1), ("NotFound", -2), ("Conflict", -3),
                       ("Fenced", -4), ("Exists", -5), ("StoreError", -6),
                       ("Unknown", -15)]:
        cls = getattr(vse, name)
        assert cls.code == code and issubclass(cls, vse.Error)
    assert issubclass(vse.Conflict, vse.errors._Refusal)
    assert issubclass(vse.Fenced, vse.errors._Refusal)


def test_struct_layouts_match_the_header(tmp_path):
    fields = {
        "vse_error": (_lib.Error, ["code", "msg", "detail", "hint"]),
        "vse_resource": (_lib.Resource, [f for f, _ in
                                         _lib.Resource._fields_]),
        "vse_event": (_lib.Event, [f for f, _ in _lib.Event._fields_]),
        "vse_opts": (_lib.Opts, [f for f, _ in _lib.Opts._fields_]),
        "vse_filter": (_lib.Filter, [f for f, _ in _lib.Filter._fields_]),
        "vse_reap_stats": (_lib.ReapStats, [f for f, _ in
                                            _lib.ReapStats._fields_]),
        "vse_purge_policy": (_lib.PurgePolicy, ["before", "drop_terminal"]),
        "vse_purge_stats": (_lib.PurgeStats, ["history_rows", "resources"]),
        "vse_hold": (_lib.Hold, [f for f, _ in _lib.Hold._fields_]),
    }
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "vse.h"',
             'int main(void) {']
    for s, (_, names) in fields.items():
        lines.append('printf("%s %%zu\\n", sizeof(struct %s));' % (s, s))
        for f in names:
            cf = "from" if f == "from_" else f
            lines.append('printf("%s.%s %%zu\\n", offsetof(struct %s, %s));'
                         % (s, f, s, cf))
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-I", os.path.join(ROOT, "include"), "-o",
                    str(exe), str(src)], check=True)
    out = dict(l.split() for l in
               subprocess.run([str(exe)], capture_output=True, text=True,
                              check=True).stdout.splitlines())
    for s, (cls, names) in fields.items():
        assert int(out[s]) == __import__("ctypes").sizeof(cls), s
        for f in names:
            assert int(out["%s.%s" % (s, f)]) == getattr(cls, f).offset, \
                "%s.%s" % (s, f)


# ---- conformance subset ---------------------------------------------------

def test_flow_and_keys_match_vsectl(st, store_url, rid):
    row = run_flow(st, rid)
    assert (row["state"], row["status"], row["op"], row["version"]) == \
        ("available", "available", None, 4)
    rc, out, err = vsectl(store_url, "get", rid, "--json")
    assert rc == 0, err
    assert st.get(rid) == json.loads(out)
    rc, out, err = vsectl(store_url, "history", rid, "--json")
    assert rc == 0, err
    theirs = [json.loads(l) for l in out.splitlines()]
    ours = st.history(rid)
    assert ours == theirs
    assert [e["kind"] for e in ours] == ["create", "step", "step", "finish"]
    assert [e["to"] for e in ours] == ["creating_db", "scheduling",
                                       "creating_vol", "available"]
    listed = [r for r in st.list(machine="volume", state="available")
              if r["id"] == rid]
    assert listed == [st.get(rid)]
    assert st.check(rid) == []


DISK = """machine: disk
version: 1
states:
  creating: {kind: busy, status: creating}
  ready: {kind: rest, status: ready}
  deleting: {kind: busy, status: deleting}
  deleted: {kind: rest, status: deleted}
  error: {kind: rest, status: error}
operations:
  create: {from: new, steps: [creating], success: ready, failure: error,
           on_expiry: fail}
  delete: {from: [ready, error], steps: [deleting], success: deleted,
           failure: error, on_expiry: fail, refused_while_held: shared}
"""
SNAP = """machine: snap
version: 1
states:
  creating: {kind: busy, status: creating}
  ready: {kind: rest, status: ready}
  error: {kind: rest, status: error}
operations:
  create: {from: new, steps: [creating], success: ready, failure: error,
           on_expiry: fail, holds: {machine: disk, mode: shared}}
"""


def test_holds(st, rid):
    st.add_machine(vse.machine_load(text=DISK, name="disk.yaml"))
    st.add_machine(vse.machine_load(text=SNAP, name="snap.yaml"))
    d, s = rid + "-d", rid + "-s"
    st.finish(d, st.create("disk", d, owner="t"))
    op = st.create("snap", s, owner="snap@h2", hold=d)
    (h,) = st.holds(held=d)
    assert (h["holder"], h["machine"], h["op"], h["op_id"], h["mode"],
            h["owner"]) == (s, "snap", "create", op, "shared", "snap@h2")
    assert st.get(d)["holds"][0]["holder"] == s
    assert st.get(s)["holding"]["held"] == d
    with pytest.raises(vse.Conflict) as ei:
        st.begin(d, "delete", owner="t")
    assert "is held: shared by snap '%s' (create" % s in str(ei.value)
    st.finish(s, op)
    assert st.holds(held=d) == [] and st.get(d)["holds"] == []


def test_claim_step(st, rid):
    op = st.create("volume", rid, owner="api@h1")
    st.step(rid, op, "scheduling", release=True)
    with pytest.raises(vse.Conflict):
        st.claim_step(rid, op, "available", owner="sched@h2")
    row = st.claim_step(rid, op, "creating_vol", owner="sched@h2",
                        release=True, attrs={"host": "h3"},
                        reason="task schedule: done")
    assert (row["state"], row["owner"], row["attrs"]["host"]) == \
        ("creating_vol", None, "h3")
    assert row["op_id"] != op
    last = st.history(rid)[-1]
    assert (last["kind"], last["from"], last["to"], last["owner"]) == \
        ("claim", "scheduling", "creating_vol", "sched@h2")
    with pytest.raises(vse.Fenced):
        st.claim(rid, op, owner="volume@h3")
    st.finish(rid, st.claim(rid, row["op_id"], owner="volume@h3"))
    assert st.check(rid) == []


def test_refusal_carries_the_current_row(st, rid):
    op = st.create("volume", rid, owner="api@h1")
    with pytest.raises(vse.Conflict) as ei:
        st.begin(rid, "delete", owner="other")
    e = ei.value
    assert e.code == -3 and e.exit_status == 3 and e.http_status == 409
    assert e.resource["state"] == "creating_db"
    assert e.resource["op"] == "create" and e.resource["op_id"] == op
    assert e.resource["owner"] == "api@h1"
    assert "is busy: create" in e.message
    assert e.hint.startswith("allowed now")
    # A refusal changed nothing.
    assert st.get(rid)["version"] == 1


def test_fenced_after_reset(st, rid):
    op = st.create("volume", rid, owner="w1")
    st.step(rid, op, "scheduling")
    st.reset_state(rid, "error", reason="operator: stuck", actor="admin")
    with pytest.raises(vse.Fenced) as ei:
        st.step(rid, op, "creating_vol")
    assert ei.value.resource["state"] == "error"
    assert ei.value.resource["op"] is None
    assert st.history(rid)[-1]["kind"] == "reset"
    with pytest.raises(vse.Invalid):
        st.reset_state(rid, "available", reason="")


def test_idempotent_repeat(st, rid):
    run_flow(st, rid)
    op1 = st.begin(rid, "extend", owner="w", request_id="req-" + rid)
    op2 = st.begin(rid, "extend", owner="w", request_id="req-" + rid)
    assert op1 == op2
    first = st.finish(rid, op1, "available")
    again = st.finish(rid, op1, "available")
    assert again["version"] == first["version"]
    assert len(st.history(rid)) == 6


def test_not_found_and_bad_input(st, rid):
    with pytest.raises(vse.NotFound) as ei:
        st.get(rid)
    assert ei.value.exit_status == 4
    with pytest.raises(vse.NotFound):
        st.begin(rid, "delete")
    with pytest.raises(vse.Invalid):
        st.create("volume", "", owner="x")
    with pytest.raises(vse.Invalid):
        st.create("no-such-machine", rid)
    with pytest.raises(vse.Invalid):
        st.begin(rid, "delete", ttl=-1)
    op = st.create("volume", rid)
    with pytest.raises((vse.Invalid, vse.Conflict)):
        st.step(rid, op, "no_such_state")
    with pytest.raises(vse.Exists):
        st.create("volume", rid)


def test_watch_sees_every_event_in_order(st, store_url, rid):
    start = st.last_seq()
    seen = []
    ready = threading.Event()

    def watcher():
        w = vse.open(store_url)
        ready.set()
        for e in w.watch(since=start, timeout=10):
            if e["resource"] == rid:
                seen.append(e)
            if len(seen) == 6:
                break
        w.close()

    t = threading.Thread(target=watcher)
    t.start()
    ready.wait(10)
    run_flow(st, rid)
    with st.operation(rid, "extend", owner="w"):
        pass
    t.join(15)
    assert not t.is_alive()
    assert [e["kind"] for e in seen] == ["create", "step", "step", "finish",
                                         "begin", "finish"]
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(seqs) and seqs[0] > start


def test_operation_context(st, store_url, rid):
    run_flow(st, rid)
    with st.operation(rid, "extend", owner="w") as op:
        assert st.get(rid)["state"] == "extending"
    assert st.get(rid)["state"] == "available"
    assert op.done
    with pytest.raises(RuntimeError):
        with st.operation(rid, "extend", owner="w"):
            raise RuntimeError("driver said no")
    row = st.get(rid)
    assert row["state"] == "error_extending"
    assert st.history(rid)[-1]["reason"] == "RuntimeError: driver said no"


def test_operation_renews_while_it_runs(st, store_url, rid):
    run_flow(st, rid)
    other = vse.open(store_url)
    with st.operation(rid, "extend", owner="w", ttl=0.4) as op:
        first = st.get(rid)["lease_expires"]
        deadline = time.monotonic() + 5
        while st.get(rid)["lease_expires"] == first:
            assert time.monotonic() < deadline, "no renewal within 5 s"
            time.sleep(0.05)
        time.sleep(0.6)  # longer than the lease: only renewals keep it
        other.reap()
        assert st.get(rid)["op_id"] == op.op_id
    other.close()
    assert st.get(rid)["state"] == "available"
    assert op.renew_error is None


def test_renew_records_a_row_only_with_a_reason(st, rid):
    run_flow(st, rid)
    op = st.begin(rid, "extend", owner="w", ttl=30)
    r = st.get(rid)
    rows = len(st.history(rid))
    after = st.renew(rid, op, ttl=30)
    assert after["version"] == r["version"] + 1
    assert len(st.history(rid)) == rows  # a heartbeat: the row only
    st.renew(rid, op, ttl=30, reason="task x: start")
    h = st.history(rid)
    assert len(h) == rows + 1 and h[-1]["kind"] == "renew"
    assert h[-1]["reason"] == "task x: start"
    assert h[-1]["version"] == r["version"] + 2


def test_machines(tmp_path):
    assert {"volume", "snapshot"} <= set(vse.builtin_machines())
    m = vse.machine_builtin("volume")
    assert m.name == "volume" and m.version >= 1 and len(m.hash) == 16
    assert m.status("in_use") == "in-use"
    assert m.busy("deleting") and not m.busy("available")
    assert "digraph" in m.render("dot")
    assert m.definition()["machine"] == "volume"
    with pytest.raises(vse.Invalid):
        m.render("png")
    bad = tmp_path / "bad.yaml"
    bad.write_text("machine: x\nversion: 1\nstates:\n  a: {kind: rest}\n"
                   "operations:\n  o: {from: [a], steps: [nope], "
                   "success: [a], failure: a}\n")
    diags = vse.machine_validate(str(bad))
    assert diags and all(d["line"] > 0 for d in diags)
    with pytest.raises(vse.MachineError) as ei:
        vse.machine_load(str(bad))
    assert ei.value.diagnostics == diags
    assert vse.machine_validate(
        os.path.join(ROOT, "machines", "volume.yaml")) == []
