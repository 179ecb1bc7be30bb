"""
vse - the volume state enforcer, from Python.

A thin binding over libvse (ctypes, no compiled extension): every call is
the C library's, so the rules, the store formats and the error table are
the same as vsectl's and vsed's.  The verbs and their argument order
mirror vsectl's; results are plain dicts with the keys of vsectl's --json.

    import vse
    st = vse.open("sqlite:./var/vse.db")
    op_id = st.create("volume", "v1", owner="me")
    st.step("v1", op_id, "scheduling")
    ...
    with st.operation("v1", "extend", owner="me") as op:
        op.step("extending")          # finished on a normal exit

The library is found at $VSE_LIBRARY, else in the source tree
(build/libvse.so beside python/), else where the system keeps it
(libvse.so.0).  See docs/python.md.
"""
import ctypes
import json
import threading

from . import _lib
from . import errors as _errors
from .errors import Error, from_code  # noqa: F401

for _n in _errors.__all__:
    globals()[_n] = getattr(_errors, _n)

__all__ = ["open", "Store", "Operation", "Machine", "machine_load",
           "machine_builtin", "machine_validate", "builtin_machines",
           "library_path"] + list(_errors.__all__)

library_path = _lib.path
_L = _lib.lib

# enum vse_kind, as vse_kind_name() spells it.
_KINDS = {}
for _k in range(1, 64):
    _s = _L.vse_kind_name(_k)
    if _s is None:
        break
    _KINDS[_k] = _s.decode()

# enum vse_hold_mode, as vse_hold_mode_name() spells it.
_HOLD_MODES = {1: "shared", 2: "exclusive"}

_FORMATS = ("table", "dot", "mermaid", "json")


def _b(s):
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return str(s).encode("utf-8")


def _s(raw):
    """A fixed C string field as vsectl --json shows it: None when empty."""
    v = raw.decode("utf-8", "replace")
    return v if v else None


def _time(us):
    if not us:
        return None
    buf = ctypes.create_string_buffer(40)
    return _L.vse_time_format(us, buf, len(buf)).decode()


def _ttl_ms(ttl):
    """ttl: seconds (int or float), or None for the library's default."""
    if ttl is None:
        return 0
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise Invalid("ttl must be a number of seconds, not %r" % (ttl,))
    ms = int(round(ttl * 1000))
    if ms <= 0:
        raise Invalid("ttl must be positive, not %r" % (ttl,))
    return ms


def _raise(rc, err, db=None, out=None):
    exc = from_code(rc, err)
    if isinstance(exc, _errors._Refusal) and out is not None and out.id:
        exc.resource = db._row(out) if db is not None else None
    raise exc


class Machine:
    """A loaded machine definition (owned by this object)."""

    def __init__(self, handle, owned=True):
        self._h = handle
        self._owned = owned

    def __del__(self):
        if getattr(self, "_owned", False) and self._h:
            _L.vse_machine_free(self._h)
            self._h = None

    def _take(self):
        """Hand the C object to a store (which takes ownership)."""
        h, self._h, self._owned = self._h, None, False
        return h

    @property
    def name(self):
        return _L.vse_machine_name(self._h).decode()

    @property
    def version(self):
        return _L.vse_machine_version(self._h)

    @property
    def hash(self):
        return _L.vse_machine_hash(self._h).decode()

    def status(self, state):
        """The user-visible status of a state, or None if unknown."""
        s = _L.vse_machine_status(self._h, _b(state))
        return s.decode() if s is not None else None

    def busy(self, state):
        """True for a busy state, False for a rest one; Invalid if unknown."""
        rc = _L.vse_machine_state_busy(self._h, _b(state))
        if rc < 0:
            raise Invalid("state '%s' is not a state of machine '%s'" %
                          (state, self.name))
        return rc == 1

    def render(self, fmt="table"):
        """The machine as text: table, dot, mermaid or json."""
        f = _L.vse_format_parse(_b(fmt))
        if f == 0:
            raise Invalid("format '%s' is not one of %s" %
                          (fmt, ", ".join(_FORMATS)))
        out = ctypes.c_void_p()
        err = _lib.Error()
        rc = _L.vse_machine_render(self._h, f, ctypes.byref(out),
                                   ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
        try:
            return ctypes.string_at(out).decode()
        finally:
            _L.vse_free(out)

    def definition(self):
        """The machine as a dict (the json rendering)."""
        return json.loads(self.render("json"))


def _load(path=None, text=None, name=None):
    diags = []

    def diag(ctx, file, line, col, msg):
        diags.append({"file": file.decode() if file else None, "line": line,
                      "col": col, "message": msg.decode("utf-8", "replace")})

    cb = _lib.DIAG_FN(diag)
    out = ctypes.c_void_p()
    err = _lib.Error()
    if text is not None:
        data = _b(text)
        rc = _L.vse_machine_load_buffer(_b(name or "<string>"), data,
                                        len(data), cb, None,
                                        ctypes.byref(out), ctypes.byref(err))
    else:
        rc = _L.vse_machine_load_file(_b(path), cb, None, ctypes.byref(out),
                                      ctypes.byref(err))
    return rc, err, diags, (Machine(out.value) if rc == 0 else None)


def machine_load(path=None, text=None, name=None):
    """Load and validate a machine from a file (or from ``text``).

    Raises vse.MachineError (with ``.diagnostics``: every problem as a dict
    of file, line, col, message), vse.TooBig or vse.IOError.
    """
    rc, err, diags, m = _load(path, text, name)
    if rc < 0:
        exc = from_code(rc, err)
        exc.diagnostics = diags
        raise exc
    return m


def machine_validate(path=None, text=None, name=None):
    """The problems of a machine file, as a list of dicts (empty: valid).

    Only I/O and size failures raise; what ``vsectl machine validate``
    reports comes back as data.
    """
    rc, err, diags, m = _load(path, text, name)
    if rc < 0 and not diags:
        if rc == MachineError.code:
            return [{"file": path or name, "line": 0, "col": 0,
                     "message": err.msg.decode("utf-8", "replace")}]
        raise from_code(rc, err)
    return diags


def machine_builtin(name):
    """A built-in machine ("volume", "snapshot", ...)."""
    out = ctypes.c_void_p()
    err = _lib.Error()
    rc = _L.vse_machine_builtin(_b(name), ctypes.byref(out),
                                ctypes.byref(err))
    if rc < 0:
        _raise(rc, err)
    return Machine(out.value)


def builtin_machines():
    names = _L.vse_machine_builtin_names()
    out = []
    i = 0
    while names[i] is not None:
        out.append(names[i].decode())
        i += 1
    return out


def _opts(owner=None, ttl=None, reason=None, request_id=None, op=None,
          release=False, attrs=None, hold=None):
    o = _lib.Opts()
    o.hold = _b(hold)
    o.owner = _b(owner)
    o.ttl_ms = _ttl_ms(ttl)
    o.reason = _b(reason)
    o.request_id = _b(request_id)
    o.op = _b(op)
    o.release = 1 if release else 0
    if attrs is not None:
        o.attrs = _b(attrs if isinstance(attrs, (str, bytes))
                     else json.dumps(attrs))
    return o


class Store:
    """An open store: one libvse handle.

    A handle is used by one thread at a time in C; this object serialises
    its calls with a lock, so it may be shared by threads (an operation's
    renewing thread does).  For parallel work open one Store per thread.
    """

    def __init__(self, url, machines=()):
        self.url = url
        self._lock = threading.RLock()
        self._h = ctypes.c_void_p()
        self._defs = {}
        err = _lib.Error()
        rc = _L.vse_open(_b(url), ctypes.byref(self._h), ctypes.byref(err))
        if rc < 0:
            self._h = None
            _raise(rc, err)
        for m in machines:
            self.add_machine(m)

    # ---- lifetime ------------------------------------------------------

    def close(self):
        with self._lock:
            if self._h:
                _L.vse_close(self._h)
                self._h = None

    def interrupt(self):
        """From any thread: stop waiting for an unreachable store."""
        if self._h:
            _L.vse_interrupt(self._h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _handle(self):
        if not self._h:
            raise Invalid("store '%s' is closed" % self.url)
        return self._h

    # ---- machines ------------------------------------------------------

    def add_machine(self, machine):
        """Add a machine (a vse.Machine, or a path to a machine file)."""
        if not isinstance(machine, Machine):
            machine = machine_load(machine)
        err = _lib.Error()
        with self._lock:
            rc = _L.vse_add_machine(self._handle(), machine._take(),
                                    ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)

    def machine(self, name):
        """The store's machine of that name as a definition dict."""
        if name not in self._defs:
            with self._lock:
                h = _L.vse_find_machine(self._handle(), _b(name))
                if not h:
                    raise NotFound("machine '%s' is not loaded" % name)
                self._defs[name] = Machine(h, owned=False).definition()
        return self._defs[name]

    # ---- rows ----------------------------------------------------------

    def _status(self, r):
        h = _L.vse_find_machine(self._h, r.machine)
        if not h:
            return None
        s = _L.vse_machine_status(h, r.state)
        return s.decode() if s is not None else None

    def _row(self, r):
        try:
            attrs = json.loads(r.attrs.decode("utf-8", "replace") or "{}")
        except ValueError:
            attrs = {}
        return {
            "id": _s(r.id), "machine": _s(r.machine), "state": _s(r.state),
            "status": self._status(r), "op": _s(r.op),
            "op_id": _s(r.op_id), "owner": _s(r.owner),
            "origin": _s(r.origin),
            "lease_expires": _time(r.lease_expires),
            "since": _time(r.since), "lease_ttl_ms": r.lease_ttl // 1000,
            "version": r.version, "created": _time(r.created),
            "updated": _time(r.updated), "attrs": attrs,
        }

    @staticmethod
    def _event(e):
        return {
            "seq": e.seq, "resource": _s(e.resource),
            "machine": _s(e.machine), "op": _s(e.op), "op_id": _s(e.op_id),
            "from": _s(e.from_), "to": _s(e.to), "owner": _s(e.owner),
            "at": _time(e.at), "reason": _s(e.reason),
            "kind": _KINDS.get(e.kind), "version": e.version,
            "request_id": _s(e.request_id),
        }

    def _call(self, fn, *args, opts=None):
        out = _lib.Resource()
        err = _lib.Error()
        with self._lock:
            rc = fn(self._handle(), *args, ctypes.byref(opts)
                    if opts is not None else None, ctypes.byref(out),
                    ctypes.byref(err))
            if rc < 0:
                _raise(rc, err, self, out)
            return self._row(out)

    # ---- transitions (vsectl's verbs, in its argument order) ------------

    def create(self, machine, id, owner=None, ttl=None, reason=None,
               request_id=None, op=None, attrs=None, hold=None):
        """Create resource ``id`` inside its creating op; returns the op_id.

        ``hold`` names the resource the op holds, for an op whose machine
        declares ``holds`` (docs/machines.md)."""
        o = _opts(owner, ttl, reason, request_id, op, attrs=attrs, hold=hold)
        return self._call(_L.vse_create, _b(machine), _b(id),
                          opts=o)["op_id"]

    def begin(self, id, op, owner=None, ttl=None, reason=None,
              request_id=None, attrs=None, hold=None):
        """Begin operation ``op``; returns its op_id (the fencing token).

        ``hold``: as for create()."""
        o = _opts(owner, ttl, reason, request_id, attrs=attrs, hold=hold)
        return self._call(_L.vse_begin, _b(id), _b(op), opts=o)["op_id"]

    def step(self, id, op_id, state, reason=None, release=False, attrs=None,
             request_id=None):
        """Move the op to its next busy state; returns the row."""
        o = _opts(reason=reason, release=release, attrs=attrs,
                  request_id=request_id)
        return self._call(_L.vse_step, _b(id), _b(op_id), _b(state), opts=o)

    def finish(self, id, op_id, state=None, reason=None, attrs=None,
               request_id=None):
        """End the op in a rest state (None: its only success state)."""
        o = _opts(reason=reason, attrs=attrs, request_id=request_id)
        return self._call(_L.vse_finish, _b(id), _b(op_id), _b(state),
                          opts=o)

    def fail(self, id, op_id, reason="failed", attrs=None, request_id=None):
        """End the op in its failure state; a reason is recorded."""
        o = _opts(reason=reason, attrs=attrs, request_id=request_id)
        return self._call(_L.vse_fail, _b(id), _b(op_id), opts=o)

    def claim(self, id, op_id, owner, ttl=None, reason=None):
        """Take over an unowned or expired op; returns the new op_id."""
        o = _opts(owner, ttl, reason)
        return self._call(_L.vse_claim, _b(id), _b(op_id), opts=o)["op_id"]

    def claim_step(self, id, op_id, state, owner, ttl=None, reason=None,
                   release=False, attrs=None):
        """Claim an unowned op and step it to ``state`` in one transition
        (one store write: for a worker with nothing durable to do between
        the two); returns the row, whose op_id is the new token."""
        o = _opts(owner, ttl, reason, release=release, attrs=attrs)
        return self._call(_L.vse_claim_step, _b(id), _b(op_id), _b(state),
                          opts=o)

    def renew(self, id, op_id, ttl=None, reason=None):
        """Extend the current owner's lease; returns the row.  No history
        row is written unless a reason is given (a task boundary)."""
        return self._call(_L.vse_renew, _b(id), _b(op_id),
                          opts=_opts(ttl=ttl, reason=reason))

    def reset_state(self, id, state, reason, actor=None):
        """The operator's escape hatch: force a rest state (recorded)."""
        if not reason:
            raise Invalid("reset_state needs a reason")
        return self._call(_L.vse_reset_state, _b(id), _b(state),
                          opts=_opts(owner=actor, reason=reason))

    def update(self, id, attrs, reason=None):
        """Merge-patch the resource's attrs (RFC 7396), in any state."""
        return self._call(_L.vse_update, _b(id),
                          opts=_opts(reason=reason, attrs=attrs))

    def reap(self):
        """Apply the expiry policy of expired leases; returns the counts."""
        st = _lib.ReapStats()
        err = _lib.Error()
        with self._lock:
            rc = _L.vse_reap(self._handle(), ctypes.byref(st),
                             ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
        return {n: getattr(st, n) for n, _ in _lib.ReapStats._fields_}

    # ---- reading -------------------------------------------------------

    def get(self, id):
        """The resource as a dict (vsectl get --json's keys)."""
        out = _lib.Resource()
        err = _lib.Error()
        with self._lock:
            rc = _L.vse_get(self._handle(), _b(id), ctypes.byref(out),
                            ctypes.byref(err))
            if rc < 0:
                _raise(rc, err)
            row = self._row(out)
        holds = self.holds(held=id) + self.holds(holder=id)
        return self._with_holds(row, holds)

    @staticmethod
    def _hold(h):
        return {
            "held": _s(h.held), "holder": _s(h.holder),
            "machine": _s(h.machine), "op": _s(h.op), "op_id": _s(h.op_id),
            "mode": _HOLD_MODES.get(h.mode), "owner": _s(h.owner),
            "since": _time(h.since),
        }

    @staticmethod
    def _with_holds(row, holds):
        """Both sides of row's holds, as vsectl get --json shows them."""
        row["holds"] = [{k: h[k] for k in ("holder", "machine", "op", "op_id",
                                           "mode", "owner", "since")}
                        for h in holds if h["held"] == row["id"]]
        mine = [h for h in holds if h["holder"] == row["id"]]
        row["holding"] = ({k: mine[0][k] for k in ("held", "mode", "since")}
                          if mine else None)
        return row

    def holds(self, held=None, holder=None):
        """Holds on ``held``, the one ``holder`` has, or all (dicts)."""
        return self._collect(_L.vse_holds, (_b(held), _b(holder)),
                             self._hold, _lib.HOLD_CB)

    def _collect(self, fn, args, conv, cbtype):
        rows = []
        failure = []

        def cb(ctx, p):
            try:
                rows.append(conv(p.contents))
            except BaseException as e:  # never unwind through C
                failure.append(e)
                return 1
            return 0

        err = _lib.Error()
        with self._lock:
            rc = fn(self._handle(), *args, cbtype(cb), None,
                    ctypes.byref(err))
        if failure:
            raise failure[0]
        if rc < 0:
            _raise(rc, err)
        return rows

    def history(self, id, after=0, limit=0):
        """The resource's history rows, oldest first."""
        return self._collect(_L.vse_history, (_b(id), after, limit),
                             self._event, _lib.EVENT_CB)

    def list(self, machine=None, state=None, not_state=None, busy=False,
             stuck=False, limit=0, after=None):
        """Resources in id order (vsectl list's filters)."""
        f = _lib.Filter(machine=_b(machine), state=_b(state),
                        busy=1 if busy else 0, stuck=1 if stuck else 0,
                        after_id=_b(after), limit=limit,
                        not_state=_b(not_state))
        holds = self.holds()
        rows = self._collect(_L.vse_list, (ctypes.byref(f),), self._row,
                             _lib.RESOURCE_CB)
        return [self._with_holds(r, holds) for r in rows]

    def events(self, since=0, limit=0):
        """Every event with seq > since, in seq order."""
        return self._collect(_L.vse_events, (since, limit), self._event,
                             _lib.EVENT_CB)

    def last_seq(self):
        seq = ctypes.c_int64()
        err = _lib.Error()
        with self._lock:
            rc = _L.vse_last_seq(self._handle(), ctypes.byref(seq),
                                 ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
        return seq.value

    def wait(self, since, timeout=1.0):
        """Block until an event after ``since`` may exist: True, or False
        on time-out.  Only a hint: read with events()."""
        err = _lib.Error()
        # Not under the lock: a wait may block for the whole timeout.
        rc = _L.vse_wait(self._handle(), since, int(timeout * 1000),
                         ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
        return rc == 1

    def watch(self, since=0, timeout=None, batch=256):
        """Iterate over events after ``since`` as they are committed.

        Blocks for new ones; with ``timeout`` (seconds) the iterator ends
        after that long without an event.  Reconnecting from the last
        ``seq`` seen loses nothing.
        """
        import time
        idle_since = time.monotonic()
        while True:
            evs = self.events(since, batch)
            for e in evs:
                since = e["seq"]
                yield e
            if evs:
                idle_since = time.monotonic()
                continue
            left = 1.0
            if timeout is not None:
                left = timeout - (time.monotonic() - idle_since)
                if left <= 0:
                    return
            self.wait(since, min(left, 1.0))

    def purge(self, before_us, drop_terminal=False):
        p = _lib.PurgePolicy(before=before_us,
                             drop_terminal=1 if drop_terminal else 0)
        st = _lib.PurgeStats()
        err = _lib.Error()
        with self._lock:
            rc = _L.vse_purge(self._handle(), ctypes.byref(p),
                              ctypes.byref(st), ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
        return {"history_rows": st.history_rows, "resources": st.resources}

    def check(self, id=None):
        """Invariant violations, as a list of (resource id, message)."""
        found = []

        def cb(ctx, rid, msg):
            found.append((rid.decode("utf-8", "replace"),
                          msg.decode("utf-8", "replace")))

        n = ctypes.c_int64()
        err = _lib.Error()
        with self._lock:
            rc = _L.vse_check(self._handle(), _b(id), _lib.VIOLATION_FN(cb),
                              None, ctypes.byref(n), ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
        return found

    # ---- operations as context managers --------------------------------

    def operation(self, id, op, owner=None, ttl=30.0, reason=None,
                  renew_every=None):
        """``with st.operation(id, op, owner=...) as op:`` begins ``op``.

        Inside, ``op.step(state)`` moves it on; on a normal exit it is
        finished (in its only success state, or the one passed to
        ``op.finish(state)``); on an exception it is failed with the
        exception as the reason and the exception propagates.  A thread
        renews the lease every ttl/3 seconds while the block runs.
        """
        return Operation(self, id, op, owner, ttl, reason, renew_every)


class Operation:
    """One operation in flight, begun by Store.operation()."""

    def __init__(self, store, id, op, owner, ttl, reason, renew_every):
        self.store = store
        self.id = id
        self.op = op
        self.owner = owner
        self.ttl = ttl
        self.reason = reason
        self.op_id = None
        self.done = False
        self.renew_error = None
        self._every = renew_every or max(ttl / 3.0, 0.05)
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.op_id = self.store.begin(self.id, self.op, owner=self.owner,
                                      ttl=self.ttl, reason=self.reason)
        self._thread = threading.Thread(target=self._renew, daemon=True,
                                        name="vse-renew-%s" % self.id)
        self._thread.start()
        return self

    def _renew(self):
        while not self._stop.wait(self._every):
            try:
                self.store.renew(self.id, self.op_id, ttl=self.ttl)
            except Fenced as e:  # reset or taken over: stop renewing
                self.renew_error = e
                return
            except Error as e:  # transient: the next tick tries again
                self.renew_error = e

    def _halt(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def step(self, state, reason=None, attrs=None):
        return self.store.step(self.id, self.op_id, state, reason=reason,
                               attrs=attrs)

    def finish(self, state=None, reason=None, attrs=None):
        r = self.store.finish(self.id, self.op_id, state, reason=reason,
                              attrs=attrs)
        self.done = True
        return r

    def fail(self, reason, attrs=None):
        r = self.store.fail(self.id, self.op_id, reason=reason, attrs=attrs)
        self.done = True
        return r

    def __exit__(self, etype, exc, tb):
        self._halt()
        if self.done:
            return False
        if etype is not None:
            why = "%s: %s" % (etype.__name__, exc)
            try:
                self.fail(why[:1000])
            except Error:
                pass  # fenced or gone: the original error matters more
            return False
        success = self._success_states()
        if len(success) != 1:
            self.fail("operation '%s' left without choosing one of %s" %
                      (self.op, ", ".join(success)))
            raise Invalid("operation '%s' has several success states (%s): "
                          "call op.finish(state)" %
                          (self.op, ", ".join(success)))
        self.finish(success[0])
        return False

    def _success_states(self):
        row = self.store.get(self.id)
        for o in self.store.machine(row["machine"])["operations"]:
            if o["name"] == self.op:
                return list(o["success"])
        return []


# vse.open(url): the name the API promises, though it shadows a builtin.
def open(url, machines=()):  # noqa: A001
    """Open the store at ``url``: sqlite:PATH, postgresql://...,
    zookeeper://HOST:PORT[,...]/CHROOT."""
    return Store(url, machines)
