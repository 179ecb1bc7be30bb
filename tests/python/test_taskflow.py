"""
test_taskflow.py - examples/taskflow_create_volume.py as a real process
with the real taskflow engine: forward, reverted by an injected failure,
and killed with SIGKILL mid-flow (the volume is then left to its
machine's expiry policy, which the reaper applies).
"""
import os
import signal
import subprocess
import sys
import time

import pytest

import vse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(ROOT, "examples", "taskflow_create_volume.py")

pytest.importorskip("taskflow")


def example(url, rid, *args, wait=True):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    cmd = [sys.executable, EXAMPLE, "--store", url, "--id", rid] + list(args)
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=120)


def transitions(st, rid):
    return [e for e in st.history(rid) if e["kind"] != "update"]


def test_forward(st, store_url, rid):
    p = example(store_url, rid)
    assert p.returncode == 0, p.stderr
    assert st.get(rid)["state"] == "available"
    rows = transitions(st, rid)
    assert [(e["kind"], e["to"], e["reason"]) for e in rows] == [
        ("create", "creating_db", "taskflow task record_in_db"),
        ("step", "scheduling", "taskflow task schedule"),
        ("step", "creating_vol", "taskflow task create_on_host"),
        ("finish", "available", "taskflow task finish"),
    ]
    notes = [e["reason"] for e in st.history(rid) if e["kind"] == "update"]
    # The engine's notifications are in the same history, in order.
    assert notes[0] == "taskflow flow create_volume RUNNING"
    assert notes[-1] == "taskflow flow create_volume SUCCESS"
    assert "taskflow task schedule SUCCESS" in notes
    assert st.get(rid)["attrs"]["taskflow"]["state"] == "SUCCESS"
    assert st.check(rid) == []
    # A second run with the same id is refused, and changes nothing.
    before = st.get(rid)["version"]
    p = example(store_url, rid)
    assert p.returncode == 3 and "already exists" in p.stderr
    assert st.get(rid)["version"] == before


def test_reverted(st, store_url, rid):
    p = example(store_url, rid, "--fail-at", "creating_vol")
    assert p.returncode == 1, p.stderr
    assert "flow reverted" in p.stderr
    row = st.get(rid)
    assert (row["state"], row["status"], row["op"]) == ("error", "error",
                                                        None)
    last = transitions(st, rid)[-1]
    assert last["kind"] == "fail" and last["from"] == "creating_vol"
    assert last["reason"].startswith("taskflow task record_in_db: reverted:")
    assert "injected failure at creating_vol" in last["reason"]
    notes = [e["reason"] for e in st.history(rid) if e["kind"] == "update"]
    assert "taskflow task create_on_host REVERTED" in notes
    assert notes[-1] == "taskflow flow create_volume REVERTED"
    assert st.check(rid) == []


@pytest.mark.parametrize("where,policy_state,owner_after", [
    ("creating_vol", "creating_vol", None),  # retry: handed back
    ("creating_db", "error", None),          # fail: ends in error
])
def test_killed_mid_flow(st, store_url, rid, where, policy_state,
                         owner_after):
    p = example(store_url, rid, "--pause-at", where, "--ttl", "0.5",
                wait=False)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert p.poll() is None, p.stderr.read()
            try:
                if st.get(rid)["state"] == where:
                    break
            except vse.NotFound:
                pass
            assert time.monotonic() < deadline, "never reached " + where
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)
        assert p.wait(30) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
        p.stdout.close()
        p.stderr.close()
    # Nobody renews now: once the lease is over, the reaper applies the
    # machine's policy for the step the process died in.
    deadline = time.monotonic() + 30
    while True:
        stats = st.reap()
        row = st.get(rid)
        if row["state"] == policy_state and row["owner"] == owner_after and \
                st.history(rid)[-1]["kind"] == "expire":
            break
        assert time.monotonic() < deadline, (stats, row)
        time.sleep(0.1)
    assert st.check(rid) == []
