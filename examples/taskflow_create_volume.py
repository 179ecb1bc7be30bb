#!/usr/bin/python3
"""
taskflow_create_volume.py - the proposal's create_volume as a real taskflow
linear flow whose tasks are vse transitions.

    record_in_db    create the volume          -> creating_db
    schedule        pick a host                -> scheduling
    create_on_host  the host makes the volume  -> creating_vol
    finish          done                       -> available

Every history row's reason names the taskflow task that wrote it, and the
engine's own notifications (flow and task state changes) are recorded in
the same history.  With --fail-at STATE the task that entered STATE
raises: taskflow reverts the flow, the volume ends in the machine's
failure state (error) and the command exits 1.

Run from a source tree:
    PYTHONPATH=python examples/taskflow_create_volume.py \\
        --store sqlite:./var/vse.db --id vol-1
    build/vsectl --store sqlite:./var/vse.db history vol-1
"""
import argparse
import json
import os
import socket
import sys
import time

try:
    import vse
    import vse.taskflow as vtf
    import taskflow.engines
    from taskflow.patterns import linear_flow
except ImportError as e:  # say what to install, not a traceback
    sys.exit("taskflow_create_volume: %s (install python3-taskflow; run "
             "with PYTHONPATH=python from a source tree)" % e)

STATES = ("creating_db", "scheduling", "creating_vol")


class InjectedFailure(Exception):
    """The failure --fail-at asks for."""


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Create a volume through a taskflow linear flow whose "
        "tasks are vse transitions (creating_db -> scheduling -> "
        "creating_vol -> available).",
        epilog="Exit status: 0 the volume is available, 1 the flow failed "
        "and was reverted (the volume is in error), 2 bad usage, 3 refused "
        "(the id exists or is busy).")
    p.add_argument("--store", required=True,
                   help="store URL, e.g. sqlite:./var/vse.db")
    p.add_argument("--id", required=True, help="the new volume's id")
    p.add_argument("--size", type=int, default=1, help="size in GiB (1)")
    p.add_argument("--owner", default="taskflow@%s:%d" % (
        socket.gethostname(), os.getpid()),
        help="owner recorded on the transitions")
    p.add_argument("--ttl", type=float, default=30.0,
                   help="lease in seconds (30): past it without a renewal, "
                   "the reaper applies the machine's expiry policy")
    p.add_argument("--fail-at", choices=STATES,
                   help="make the task that enters this state raise")
    p.add_argument("--pause-at", choices=STATES,
                   help="sleep --pause seconds in the task that enters this "
                   "state (for crash tests)")
    p.add_argument("--pause", type=float, default=60.0,
                   help="how long --pause-at sleeps (60)")
    p.add_argument("--json", action="store_true",
                   help="print the final row as JSON")
    return p.parse_args(argv)


def main(argv):
    a = parse_args(argv)
    st = vse.open(a.store)

    def maybe(state):
        if a.pause_at == state:
            print("paused in %s" % state, flush=True)
            time.sleep(a.pause)
        if a.fail_at == state:
            raise InjectedFailure("injected failure at %s" % state)

    def schedule(store, vid, op_id):
        maybe("scheduling")
        host = socket.gethostname()
        # The host goes with the step that chose it, in one transition.
        return host

    def create_on_host(store, vid, op_id):
        maybe("creating_vol")

    class RecordInDb(vtf.Create):
        def execute(self):
            op_id = super().execute()
            maybe("creating_db")
            return op_id

    flow = linear_flow.Flow("create_volume").add(
        RecordInDb(st, "volume", a.id, owner=a.owner, ttl=a.ttl,
                   name="record_in_db", attrs={"size": a.size}),
        vtf.Step(st, a.id, "scheduling", name="schedule", work=schedule,
                 provides="host"),
        vtf.Step(st, a.id, "creating_vol", name="create_on_host",
                 work=create_on_host),
        vtf.Finish(st, a.id, "available", name="finish"),
    )
    engine = taskflow.engines.load(flow)
    status = 0
    try:
        with vtf.HistoryListener(engine, st, a.id):
            engine.run()
    except InjectedFailure as e:
        print("taskflow_create_volume: %s; flow reverted" % e,
              file=sys.stderr)
        status = 1
    except (vse.Conflict, vse.Exists, vse.Fenced) as e:
        print("taskflow_create_volume: refused: %s" % e, file=sys.stderr)
        return 3
    except vse.Invalid as e:
        print("taskflow_create_volume: %s" % e, file=sys.stderr)
        return 2
    row = st.get(a.id)
    if a.json:
        print(json.dumps(row))
    else:
        print("%s %s (%s)" % (a.id, row["state"], row["status"]))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
