"""
conftest.py - fixtures for the Python binding's tests: a store URL per
store kind.  SQLite always; PostgreSQL when $VSE_TEST_PG_URL names a
server and ZooKeeper when $VSE_TEST_ZK_URL does
(tests/integration/t-python.sh starts throwaway ones with tests/pg.sh and
tests/zk.sh).  Every test uses fresh resource ids, so tests sharing one
database or chroot cannot see each other's rows.
"""
import os
import sys
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

STORES = ["sqlite"]
if os.environ.get("VSE_TEST_PG_URL"):
    STORES.append("postgresql")
if os.environ.get("VSE_TEST_ZK_URL"):
    STORES.append("zookeeper")


@pytest.fixture(params=STORES)
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite:%s" % (tmp_path / "vse.db")
    if request.param == "postgresql":
        return os.environ["VSE_TEST_PG_URL"]
    return os.environ["VSE_TEST_ZK_URL"]


@pytest.fixture
def st(store_url):
    import vse
    s = vse.open(store_url)
    yield s
    s.close()


@pytest.fixture
def rid():
    """A fresh resource id."""
    return "py-" + uuid.uuid4().hex[:12]
