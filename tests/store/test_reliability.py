"""Nothing a reader does is lost: killed or concurrent writers, a full disk, a read-only folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backmice.store import Action, Project, StoreError
from tests.store.conftest import tiny_analysis

CHILD = Path(__file__).with_name("writer_child.py")


@pytest.fixture
def db(tmp_path) -> Path:
    with Project.open(tmp_path / "proj") as project:
        project.add_analysis(tiny_analysis("s"))
        return project.path


def _writer(db: Path, reader: str, n: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(db), reader, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigkill_mid_burst_loses_no_committed_edit(db):
    child = _writer(db, "anna", 100_000)
    committed = []
    for line in child.stdout:
        committed.append(tuple(int(v) for v in line.split()))
        if len(committed) == 150:
            child.send_signal(signal.SIGKILL)  # mid-burst: it is writing the next ones
            break
    child.wait(timeout=60)
    assert len(committed) == 150, child.stderr.read()
    assert child.returncode == -signal.SIGKILL
    with Project.open(db, create=False) as project:
        events = {e.id: e for e in project.events("s", reader="anna")}
        for event_id, i in committed:
            assert events[event_id].after["note"] == f"anna-{i}"
        assert project._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # the next action goes on from there
        project.record("s", Action.ACCEPT, reader="anna", nodule_id=1)


@pytest.mark.slow
def test_two_processes_500_edits_each_all_there(db):
    children = [_writer(db, reader, 500) for reader in ("anna", "ben")]
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert len(out.splitlines()) == 500
    with Project.open(db, create=False) as project:
        for reader in ("anna", "ben"):
            notes = [e.after["note"] for e in project.events("s", reader=reader)]
            assert notes == [f"{reader}-{i}" for i in range(500)]
            last = {r["nodule_id"]: r["note"] for r in project.nodules("s", reader=reader)}
            assert last == {1: f"{reader}-498", 2: f"{reader}-499", 3: f"{reader}-497"}
        assert len(project.events("s")) == 1001  # + adding the study


def test_full_disk_keeps_pending_actions_in_order(db):
    with Project.open(db) as project:
        pages = project._conn.execute("PRAGMA page_count").fetchone()[0]
        project._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
        long_note = "x" * 20_000
        with pytest.raises(StoreError, match="disk is full") as err:
            for _ in range(50):
                project.record("s", Action.SET_NOTE, reader="anna", nodule_id=1, value=long_note)
        assert err.value.code == "SQLITE_FULL" and str(db) in str(err.value)
        assert len(project.pending) == 1
        # later actions queue behind the failed one, never dropped nor reordered
        with pytest.raises(StoreError):
            project.record("s", Action.ACCEPT, reader="anna", nodule_id=2)
        with pytest.raises(StoreError):
            project.flush()
        assert [p.action for p in project.pending] == [Action.SET_NOTE, Action.ACCEPT]
        with pytest.raises(StoreError, match="not yet written"):
            project.close()
        saved = project.save_pending(db.parent.parent / "pending.json")
        project._conn.execute("PRAGMA max_page_count = 1073741823")  # space again
        written = project.flush()
        assert [e.action for e in written] == ["set_note", "accept"] and project.pending == []
        rows = {r["nodule_id"]: r for r in project.nodules("s", reader="anna")}
        assert rows[1]["note"] == long_note and rows[2]["status"] == "accepted"
        # a saved queue can be replayed too
        assert project.load_pending(saved) == 2
        assert len(project.flush()) == 2


def test_leaving_with_pending_actions_saves_them(db, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with Project.open(db) as project:
        pages = project._conn.execute("PRAGMA page_count").fetchone()[0]
        project._conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreError):
            for _ in range(50):
                project.record("s", Action.SET_NOTE, reader="anna", nodule_id=1, value="y" * 20_000)
    (saved,) = (tmp_path / "cache" / "backmice" / "pending").iterdir()
    assert str(saved) in caplog.text
    with Project.open(db) as project:
        assert project.load_pending(saved) == 1
        (event,) = project.flush()
        assert event.after["note"] == "y" * 20_000


def _make_readonly(folder: Path) -> list[str] | None:
    """Write-protect a folder and its files; the command that undoes it (None: chmod)."""
    files = [str(p) for p in folder.iterdir()] + [str(folder)]
    if os.geteuid() != 0:
        for f in files:
            Path(f).chmod(0o555 if Path(f).is_dir() else 0o444)
        return None
    # root ignores permissions; the immutable attribute stops root too
    if shutil.which("chattr") is None:
        pytest.fail("running as root without chattr: cannot make a read-only folder")
    subprocess.run(["chattr", "+i", *files], check=True)
    return ["chattr", "-i", *files]


def test_readonly_folder_is_a_clear_error_and_keeps_pending(db):
    undo = _make_readonly(db.parent)
    try:
        with Project.open(db.parent) as project:
            assert project.readonly
            assert [r["nodule_id"] for r in project.nodules("s")] == [1, 2, 3]
            with pytest.raises(StoreError, match="read-only") as err:
                project.record("s", Action.ACCEPT, reader="anna", nodule_id=1)
            assert str(db) in str(err.value)
            assert [(p.action, p.nodule_id) for p in project.pending] == [(Action.ACCEPT, 1)]
            project.save_pending(db.parent.parent / "pending.json")
            project.pending.clear()
    finally:
        if undo:
            subprocess.run(undo, check=True)
        else:
            for p in [db.parent, *db.parent.iterdir()]:
                p.chmod(0o755 if p.is_dir() else 0o644)
    with Project.open(db.parent) as project:  # writable again: the saved review goes in
        project.load_pending(db.parent.parent / "pending.json")
        project.flush()
        assert project.nodules("s", reader="anna")[0]["status"] == "accepted"


def test_sql_is_parameterised():
    """No SQL is built from values: every f-string in a SQL call is a fixed table name."""
    import re

    src = Path(__file__).parents[2] / "src" / "backmice" / "store" / "project.py"
    text = src.read_text()
    risky = re.findall(r'execute\(\s*f"([^"]*)"', text)
    allowed = {
        "PRAGMA busy_timeout",
        "PRAGMA application_id",
        "PRAGMA user_version",
        "UPDATE {table}",
    }
    assert risky  # the check sees the f-strings that are there
    for sql in risky:
        assert any(sql.startswith(a) for a in allowed), sql
    # the one table-name f-string takes names from a fixed tuple
    assert 'for table in ("nodule_edits", "reviews"):' in text


def test_quotes_and_injection_attempts_are_stored_as_text(tmp_path):
    evil = "x'); DROP TABLE events; --"
    with Project.open(tmp_path / "p") as project:
        key = project.add_analysis(tiny_analysis(evil))
        project.record(key, Action.SET_NOTE, reader=evil, nodule_id=1, value=evil)
        assert project.nodules(key, reader=evil)[0]["note"] == evil
        assert [s.key for s in project.studies()] == [evil]
        assert len(project.events()) == 2
