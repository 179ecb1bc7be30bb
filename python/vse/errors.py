"""
errors.py - vse's exceptions, one class per row of libvse's error table.

The classes are made at import time by walking the table compiled into
libvse (vse_err_name, vse_strerror, vse_err_exit_status,
vse_err_http_status over the codes), so the codes, messages, exit statuses
and HTTP statuses are the C library's own and cannot drift.  Only the
Python spelling of each class name is chosen here; a code that C adds
later and this file does not name still gets a class, named from its C
name (VSE_EFOO -> vse.EFoo).
"""
from . import _lib

# C name -> Python class name (the spelling is all this table decides).
_PY_NAMES = {
    "VSE_EINVAL": "Invalid",
    "VSE_ENOTFOUND": "NotFound",
    "VSE_ECONFLICT": "Conflict",
    "VSE_EFENCED": "Fenced",
    "VSE_EEXIST": "Exists",
    "VSE_ESTORE": "StoreError",
    "VSE_ENOMEM": "OutOfMemory",
    "VSE_EMACHINE": "MachineError",
    "VSE_ESCHEMA": "SchemaError",
    "VSE_EPINNED": "Pinned",
    "VSE_ETOOBIG": "TooBig",
    "VSE_EBUSY": "Busy",
    "VSE_EINTERNAL": "Internal",
    "VSE_EIO": "IOError",
    "VSE_EUNKNOWN": "Unknown",
}

# Codes are small negative numbers, never reused; a retired one leaves a
# gap, so the walk goes past gaps up to this bound.
_CODE_FLOOR = -256


class Error(Exception):
    """Base of every vse error.

    Attributes: ``code`` (the negative VSE_E* number), ``name``
    ("VSE_ECONFLICT"), ``message`` (one line, what failed first),
    ``detail`` (facts: the store's own text, errno), ``hint`` (advice: for
    a refusal, what is allowed now), ``exit_status`` (vsectl's) and
    ``http_status`` (vsed's).
    """

    code = None
    name = None
    exit_status = 1
    http_status = 500

    def __init__(self, message=None, detail="", hint="", code=None):
        if code is not None:
            self.code = code
        self.message = message or (_lib.lib.vse_strerror(self.code or 0)
                                   .decode())
        self.detail = detail or ""
        self.hint = hint or ""
        super().__init__(self.message)

    def __str__(self):
        s = self.message
        if self.detail:
            s += "\n  detail: " + self.detail
        if self.hint:
            s += "\n  hint: " + self.hint
        return s


class _Refusal:
    """Mixin of the refusals that carry the current row (Conflict,
    Fenced): ``resource`` is that row as a dict, as ``Store.get`` gives."""

    resource = None


_BY_CODE = {}
__all__ = ["Error"]


def _camel(cname):
    # VSE_EFOO_BAR -> EFooBar: readable, and never a clash with the table.
    parts = cname[len("VSE_"):].split("_")
    return "".join(p[:1] + p[1:].lower() for p in parts)


def _make_classes():
    lib = _lib.lib
    for code in range(-1, _CODE_FLOOR, -1):
        cname = lib.vse_err_name(code).decode()
        if cname == "VSE_UNKNOWN":  # not a row of the table
            continue
        pyname = _PY_NAMES.get(cname, _camel(cname))
        bases = (Error,)
        if cname in ("VSE_ECONFLICT", "VSE_EFENCED"):
            bases = (Error, _Refusal)
        attrs = {
            "code": code,
            "name": cname,
            "exit_status": lib.vse_err_exit_status(code),
            "http_status": lib.vse_err_http_status(code),
            "__doc__": "%s (%d): %s" % (cname, code,
                                         lib.vse_strerror(code).decode()),
            "__module__": "vse",
        }
        cls = type(pyname, bases, attrs)
        _BY_CODE[code] = cls
        globals()[pyname] = cls
        __all__.append(pyname)


_make_classes()


def from_code(code, err=None):
    """The exception for a negative code and a filled struct vse_error."""
    cls = _BY_CODE.get(code)
    if err is not None:
        msg = err.msg.decode("utf-8", "replace")
        detail = err.detail.decode("utf-8", "replace")
        hint = err.hint.decode("utf-8", "replace")
    else:
        msg, detail, hint = None, "", ""
    if cls is None:
        return Error(msg or "error %d" % code, detail, hint, code=code)
    return cls(msg, detail, hint)


def classes():
    """{code: class} for every row of the C table."""
    return dict(_BY_CODE)
