"""
vse.taskflow - the enforcer inside taskflow flows.

The proposal vse comes from puts the state transitions of a resource into
the flow itself: each task that moves the resource on does so with one
atomic transition (refused at once if another entry point got there
first), taskflow's revert ends the operation in its machine's failure
state, and the engine's own notifications go into the same history as the
transitions, so one history shows both.

    flow = linear_flow.Flow("create_volume").add(
        vse.taskflow.Create(st, "volume", vid, owner=me),      # creating_db
        vse.taskflow.Step(st, vid, "scheduling", name="schedule",
                          work=pick_host),
        vse.taskflow.Step(st, vid, "creating_vol", name="create_on_host",
                          work=driver_create),
        vse.taskflow.Finish(st, vid, "available"))
    engine = taskflow.engines.load(flow)
    with vse.taskflow.HistoryListener(engine, st, vid):
        engine.run()

Tasks pass the op_id (the fencing token) to each other as the flow value
``op_id``.  Every transition's reason names its taskflow task
("taskflow task schedule").  See docs/python.md.
"""
from taskflow import task as _task
from taskflow.listeners import base as _base
from taskflow.types import failure as _failure

import vse

__all__ = ["Create", "Begin", "Step", "Finish", "Expect", "HistoryListener"]

OP_ID = "op_id"


def _reason(name, what=None):
    return "taskflow task %s" % name + (": %s" % what if what else "")


def _failure_text(flow_failures):
    for f in (flow_failures or {}).values():
        if isinstance(f, _failure.Failure):
            # Iterating a Failure gives its exception's type names.
            names = list(f)
            return "%s: %s" % (names[0] if names else "Error",
                               f.exception_str)
    return "flow reverted"


class _VseTask(_task.Task):
    """A task bound to one store and one resource."""

    def __init__(self, store, resource_id, name, provides=None,
                 requires=None, work=None, expect=None):
        super().__init__(name=name, provides=provides, requires=requires)
        self.store = store
        self.resource_id = resource_id
        self.work = work
        self.expect = expect

    def _validate(self, row, state):
        # The transition was the store's compare-and-swap; this checks the
        # task's own idea of where it left the resource, so a flow wired
        # to the wrong machine fails loudly at the first task.
        if self.expect is not None and row["state"] != self.expect:
            raise vse.Conflict("task %s left %s in state '%s', expected "
                               "'%s'" % (self.name, self.resource_id,
                                         row["state"], self.expect))

    def _fail_op(self, op_id, flow_failures):
        if not op_id or isinstance(op_id, _failure.Failure):
            return
        try:
            self.store.fail(self.resource_id, op_id,
                            reason=_reason(self.name, "reverted: " +
                                           _failure_text(flow_failures))
                            [:1000])
        except (vse.Fenced, vse.Conflict, vse.NotFound):
            # Already ended, reset by an operator or taken over after our
            # lease: the store's row is the truth, nothing to undo here.
            pass


class Create(_VseTask):
    """Create the resource inside its creating operation; provides op_id.

    Revert ends the operation in the machine's failure state (for a
    volume: ``error``), with the flow's failure as the reason.
    """

    def __init__(self, store, machine, resource_id, owner=None, ttl=None,
                 name="record_in_db", attrs=None, op=None):
        super().__init__(store, resource_id, name, provides=OP_ID)
        self.machine = machine
        self.owner = owner
        self.ttl = ttl
        self.attrs = attrs
        self.op = op

    def execute(self):
        return self.store.create(self.machine, self.resource_id,
                                 owner=self.owner, ttl=self.ttl,
                                 reason=_reason(self.name), op=self.op,
                                 attrs=self.attrs)

    def revert(self, result, flow_failures=None, **kwargs):
        self._fail_op(result, flow_failures)


class Begin(_VseTask):
    """Begin operation ``op`` on an existing resource; provides op_id.

    Refused at once (vse.Conflict, with the current row) when the machine
    or the resource's state does not allow it: the admission check.
    Revert ends the operation in its failure state.
    """

    def __init__(self, store, resource_id, op, owner=None, ttl=None,
                 name=None, attrs=None):
        super().__init__(store, resource_id, name or "begin_" + op,
                         provides=OP_ID)
        self.op = op
        self.owner = owner
        self.ttl = ttl
        self.attrs = attrs

    def execute(self):
        return self.store.begin(self.resource_id, self.op, owner=self.owner,
                                ttl=self.ttl, reason=_reason(self.name),
                                attrs=self.attrs)

    def revert(self, result, flow_failures=None, **kwargs):
        self._fail_op(result, flow_failures)


class Step(_VseTask):
    """Move the operation to busy state ``state``, then run ``work``.

    ``work(store, resource_id, op_id)`` (optional) does the task's real
    job once the resource is in ``state``; what it returns becomes the
    task's result (``provides``).  An exception from it makes taskflow
    revert the flow.
    """

    def __init__(self, store, resource_id, state, name=None, work=None,
                 provides=None, attrs=None):
        super().__init__(store, resource_id, name or state,
                         provides=provides, requires=[OP_ID], work=work,
                         expect=state)
        self.state = state
        self.attrs = attrs

    def execute(self, op_id):
        row = self.store.step(self.resource_id, op_id, self.state,
                              reason=_reason(self.name), attrs=self.attrs)
        self._validate(row, self.state)
        if self.work is not None:
            return self.work(self.store, self.resource_id, op_id)
        return None


class Finish(_VseTask):
    """End the operation in rest state ``state`` (None: its only one)."""

    def __init__(self, store, resource_id, state=None, name="finish",
                 attrs=None):
        super().__init__(store, resource_id, name, requires=[OP_ID],
                         expect=state)
        self.state = state
        self.attrs = attrs

    def execute(self, op_id):
        row = self.store.finish(self.resource_id, op_id, self.state,
                                reason=_reason(self.name), attrs=self.attrs)
        self._validate(row, self.state)


class Expect(_VseTask):
    """Fail the flow at once unless the resource is in one of ``states``
    (the API's admission check, before any work is queued)."""

    def __init__(self, store, resource_id, states, name="expect"):
        super().__init__(store, resource_id, name)
        self.states = list(states)

    def execute(self):
        row = self.store.get(self.resource_id)
        if row["state"] not in self.states:
            exc = vse.Conflict("%s is %s, not %s" % (
                self.resource_id, row["state"], " or ".join(self.states)))
            exc.resource = row
            raise exc


class HistoryListener(_base.Listener):
    """Record the engine's flow and task state changes in the resource's
    history, as attrs-only updates whose reason is the notification
    ("taskflow flow create_volume RUNNING", "taskflow task schedule
    REVERTED").  The resource's attrs carry the last one under
    ``taskflow``.

    Nothing is written to a resource the flow does not hold: notifications
    are kept until a task of the flow returns the op_id the resource is
    under (a Create or Begin task), or ``op_id`` is given, and dropped if
    that never happens (a flow refused at its first transition leaves the
    other operation's history alone).  A notification that cannot be
    written (store away) is dropped after one attempt and counted in
    ``dropped``: the transitions themselves are what the enforcer
    guarantees.
    """

    def __init__(self, engine, store, resource_id, op_id=None, **kwargs):
        super().__init__(engine, **kwargs)
        self.store = store
        self.resource_id = resource_id
        self.op_id = op_id
        self.pending = []
        self.dropped = 0

    def _record(self, kind, name, state, old_state):
        self.pending.append((kind, name, state, old_state))
        if self.op_id is not None:
            self._flush()

    def _flush(self):
        while self.pending:
            kind, name, state, old = self.pending.pop(0)
            try:
                self.store.update(
                    self.resource_id,
                    {"taskflow": {"kind": kind, "name": name,
                                  "state": state, "old_state": old}},
                    reason="taskflow %s %s %s" % (kind, name, state))
            except vse.Error:
                self.dropped += 1

    def _adopt(self, result):
        # A task's result that is the resource's op_id right now means the
        # flow's own create or begin went through.
        if self.op_id is not None or not isinstance(result, str):
            return
        try:
            row = self.store.get(self.resource_id)
        except vse.Error:
            return
        if row["op_id"] == result:
            self.op_id = result

    def _flow_receiver(self, state, details):
        self._record("flow", details["flow_name"], state,
                     details.get("old_state"))

    def _task_receiver(self, state, details):
        if state == "SUCCESS":
            self._adopt(details.get("result"))
        self._record("task", details["task_name"], state,
                     details.get("old_state"))
