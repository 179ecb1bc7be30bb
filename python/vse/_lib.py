"""
_lib.py - libvse through ctypes: finding the shared library, the C structs
of include/vse.h, and the prototypes of the functions the binding calls.

The structs mirror vse.h field for field; tests/python/test_binding.py
compiles a C program that prints sizeof/offsetof of each and compares, so
a header change that this file misses fails the tests instead of
corrupting memory.
"""
import ctypes
import ctypes.util
import os

# Limits from vse.h (the struct sizes depend on them).
ID_MAX = 255
NAME_MAX = 63
OPID_LEN = 36
REASON_MAX = 1023
ATTRS_MAX = 8191
ERROR_MSG_SIZE = 256
ERROR_DETAIL_SIZE = 512
ERROR_HINT_SIZE = 512

c_int64 = ctypes.c_int64


class Error(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_int),
        ("msg", ctypes.c_char * ERROR_MSG_SIZE),
        ("detail", ctypes.c_char * ERROR_DETAIL_SIZE),
        ("hint", ctypes.c_char * ERROR_HINT_SIZE),
    ]


class Resource(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char * (ID_MAX + 1)),
        ("machine", ctypes.c_char * (NAME_MAX + 1)),
        ("state", ctypes.c_char * (NAME_MAX + 1)),
        ("op", ctypes.c_char * (NAME_MAX + 1)),
        ("op_id", ctypes.c_char * (OPID_LEN + 1)),
        ("origin", ctypes.c_char * (NAME_MAX + 1)),
        ("owner", ctypes.c_char * (ID_MAX + 1)),
        ("lease_expires", c_int64),
        ("lease_ttl", c_int64),
        ("since", c_int64),
        ("updated", c_int64),
        ("created", c_int64),
        ("version", c_int64),
        ("attrs", ctypes.c_char * (ATTRS_MAX + 1)),
    ]


class Event(ctypes.Structure):
    _fields_ = [
        ("seq", c_int64),
        ("version", c_int64),
        ("kind", ctypes.c_int),
        ("resource", ctypes.c_char * (ID_MAX + 1)),
        ("machine", ctypes.c_char * (NAME_MAX + 1)),
        ("op", ctypes.c_char * (NAME_MAX + 1)),
        ("op_id", ctypes.c_char * (OPID_LEN + 1)),
        ("from_", ctypes.c_char * (NAME_MAX + 1)),
        ("to", ctypes.c_char * (NAME_MAX + 1)),
        ("owner", ctypes.c_char * (ID_MAX + 1)),
        ("at", c_int64),
        ("request_id", ctypes.c_char * (ID_MAX + 1)),
        ("reason", ctypes.c_char * (REASON_MAX + 1)),
    ]


class Opts(ctypes.Structure):
    _fields_ = [
        ("owner", ctypes.c_char_p),
        ("ttl_ms", c_int64),
        ("request_id", ctypes.c_char_p),
        ("reason", ctypes.c_char_p),
        ("op", ctypes.c_char_p),
        ("release", ctypes.c_int),
        ("seen", ctypes.POINTER(Resource)),
        ("attrs", ctypes.c_char_p),
        ("hold", ctypes.c_char_p),
        ("if_version", c_int64),
    ]


class Hold(ctypes.Structure):
    _fields_ = [
        ("held", ctypes.c_char * (ID_MAX + 1)),
        ("holder", ctypes.c_char * (ID_MAX + 1)),
        ("machine", ctypes.c_char * (NAME_MAX + 1)),
        ("op", ctypes.c_char * (NAME_MAX + 1)),
        ("op_id", ctypes.c_char * (OPID_LEN + 1)),
        ("owner", ctypes.c_char * (ID_MAX + 1)),
        ("mode", ctypes.c_int),
        ("since", c_int64),
    ]


class Filter(ctypes.Structure):
    _fields_ = [
        ("machine", ctypes.c_char_p),
        ("state", ctypes.c_char_p),
        ("busy", ctypes.c_int),
        ("stuck", ctypes.c_int),
        ("after_id", ctypes.c_char_p),
        ("limit", ctypes.c_size_t),
        ("not_state", ctypes.c_char_p),
    ]


class ReapStats(ctypes.Structure):
    _fields_ = [(n, c_int64) for n in
                ("examined", "retried", "failed", "reverted", "skipped",
                 "exhausted", "unclaimed")]


class PurgePolicy(ctypes.Structure):
    _fields_ = [("before", c_int64), ("drop_terminal", ctypes.c_int)]


class PurgeStats(ctypes.Structure):
    _fields_ = [("history_rows", c_int64), ("resources", c_int64)]


RESOURCE_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                               ctypes.POINTER(Resource))
EVENT_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                            ctypes.POINTER(Event))
HOLD_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                           ctypes.POINTER(Hold))
DIAG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p,
                           ctypes.c_int, ctypes.c_int, ctypes.c_char_p)
VIOLATION_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p,
                                ctypes.c_char_p)


def _candidates():
    env = os.environ.get("VSE_LIBRARY")
    if env:
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    # python/vse/ in a source tree: ../../build/libvse.so
    tree = os.path.join(here, os.pardir, os.pardir, "build", "libvse.so")
    names = []
    if os.path.exists(tree):
        names.append(os.path.normpath(tree))
    found = ctypes.util.find_library("vse")
    if found:
        names.append(found)
    names += ["libvse.so.0", "libvse.so"]
    return names, False


def load():
    """Load libvse: $VSE_LIBRARY, else the build tree's, else the system's."""
    names, forced = _candidates()
    errors = []
    for name in names:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            errors.append("%s: %s" % (name, e))
            if forced:
                break
    raise ImportError(
        "cannot load libvse (%s); build it with 'make' or set VSE_LIBRARY "
        "to the path of libvse.so" % "; ".join(errors))


lib, path = load()

P = ctypes.POINTER
_VP = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_E = P(Error)
_R = P(Resource)
_O = P(Opts)

_PROTOS = {
    "vse_strerror": (_S, [_I]),
    "vse_err_name": (_S, [_I]),
    "vse_err_exit_status": (_I, [_I]),
    "vse_err_http_status": (_I, [_I]),
    "vse_free": (None, [_VP]),
    "vse_check_id": (_I, [_S, _S, _E]),
    "vse_machine_load_file": (_I, [_S, DIAG_FN, _VP, P(_VP), _E]),
    "vse_machine_load_buffer": (_I, [_S, _S, ctypes.c_size_t, DIAG_FN, _VP,
                                     P(_VP), _E]),
    "vse_machine_builtin": (_I, [_S, P(_VP), _E]),
    "vse_machine_builtin_names": (P(_S), []),
    "vse_machine_free": (None, [_VP]),
    "vse_machine_name": (_S, [_VP]),
    "vse_machine_version": (_I, [_VP]),
    "vse_machine_hash": (_S, [_VP]),
    "vse_machine_status": (_S, [_VP, _S]),
    "vse_machine_state_busy": (_I, [_VP, _S]),
    "vse_format_parse": (_I, [_S]),
    "vse_machine_render": (_I, [_VP, _I, P(_VP), _E]),
    "vse_kind_name": (_S, [_I]),
    "vse_time_format": (_S, [ctypes.c_int64, ctypes.c_char_p,
                             ctypes.c_size_t]),
    "vse_now_us": (ctypes.c_int64, []),
    "vse_open": (_I, [_S, P(_VP), _E]),
    "vse_close": (None, [_VP]),
    "vse_interrupt": (None, [_VP]),
    "vse_add_machine": (_I, [_VP, _VP, _E]),
    "vse_find_machine": (_VP, [_VP, _S]),
    "vse_create": (_I, [_VP, _S, _S, _O, _R, _E]),
    "vse_begin": (_I, [_VP, _S, _S, _O, _R, _E]),
    "vse_step": (_I, [_VP, _S, _S, _S, _O, _R, _E]),
    "vse_finish": (_I, [_VP, _S, _S, _S, _O, _R, _E]),
    "vse_fail": (_I, [_VP, _S, _S, _O, _R, _E]),
    "vse_claim": (_I, [_VP, _S, _S, _O, _R, _E]),
    "vse_claim_step": (_I, [_VP, _S, _S, _S, _O, _R, _E]),
    "vse_renew": (_I, [_VP, _S, _S, _O, _R, _E]),
    "vse_reset_state": (_I, [_VP, _S, _S, _O, _R, _E]),
    "vse_update": (_I, [_VP, _S, _O, _R, _E]),
    "vse_reap": (_I, [_VP, P(ReapStats), _E]),
    "vse_get": (_I, [_VP, _S, _R, _E]),
    "vse_list": (_I, [_VP, P(Filter), RESOURCE_CB, _VP, _E]),
    "vse_history": (_I, [_VP, _S, ctypes.c_int64, ctypes.c_size_t, EVENT_CB,
                         _VP, _E]),
    "vse_events": (_I, [_VP, ctypes.c_int64, ctypes.c_size_t, EVENT_CB, _VP,
                        _E]),
    "vse_last_seq": (_I, [_VP, P(ctypes.c_int64), _E]),
    "vse_wait": (_I, [_VP, ctypes.c_int64, _I, _E]),
    "vse_purge": (_I, [_VP, P(PurgePolicy), P(PurgeStats), _E]),
    "vse_check": (_I, [_VP, _S, VIOLATION_FN, _VP, P(ctypes.c_int64), _E]),
    "vse_holds": (_I, [_VP, _S, _S, HOLD_CB, _VP, _E]),
}

for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args
