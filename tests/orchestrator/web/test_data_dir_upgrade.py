"""A data directory upgrades in place: the older layout's four database files become one.

Before one database held everything, a data directory had the job database (schema
version 2) and three more SQLite files: the gateway's uploads, the v2 assets and keys,
and the API tokens. The test writes such a directory itself, with the old schemas, then
starts the service on it and proves over HTTP that jobs, outputs, uploads, assets, keys
and tokens all survived, and that the old files were set aside.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blake3 import blake3

from orchestrator.jobs import Attempt, Item, ItemStatus, JobSpec
from orchestrator.outputs import OutputKind, OutputRecord
from orchestrator.store import DATABASE_NAME, schema
from tests.orchestrator.web.conftest import Api, png_bytes
from tests.service import start_running

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SECRET = "old-secret-of-alice"
TOKEN = f"co_0123abcd_{SECRET}"
OLD_UPLOADS = """
CREATE TABLE uploads (
    owner TEXT NOT NULL, kind TEXT NOT NULL, subfolder TEXT NOT NULL, name TEXT NOT NULL,
    sha256 TEXT NOT NULL, created_at TEXT NOT NULL,
    PRIMARY KEY (owner, kind, subfolder, name));
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
OLD_V2 = """
CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL, key TEXT NOT NULL, job_id TEXT NOT NULL, used_at REAL NOT NULL,
    PRIMARY KEY (owner, key));
CREATE TABLE assets (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, blake3 TEXT NOT NULL, sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL, content_type TEXT NOT NULL, file_path TEXT,
    tags TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT);
"""
OLD_TOKENS = """
CREATE TABLE tokens (
    id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, owner TEXT NOT NULL,
    admin INTEGER NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
"""


def _blob(data_dir: Path, data: bytes) -> str:
    sha256 = hashlib.sha256(data).hexdigest()
    path = data_dir / "blobs" / sha256[:2] / sha256
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha256


def _old_jobs(data_dir: Path, output_bytes: bytes) -> tuple[str, str]:
    """The job database at schema version 2: one finished job with one output."""
    job_id, output_id = uuid.uuid4().hex, uuid.uuid4().hex
    spec = JobSpec(graph={"1": {"class_type": "SaveImage", "inputs": {}}}, owner="alice")
    attempt = Attempt(node="n1", prompt_id="p1", started_at=NOW, ended_at=NOW)
    item = Item(id=f"{job_id}-0", job_id=job_id, index=0, status=ItemStatus.SUCCEEDED,
                node="n1", prompt_id="p1", attempts=[attempt], output_ids=[output_id],
                created_at=NOW, started_at=NOW, completed_at=NOW)
    record = OutputRecord(id=output_id, sha256=_blob(data_dir, output_bytes),
                          mime="image/png", size_bytes=len(output_bytes),
                          kind=OutputKind.IMAGE, filename="out_00001_.png", node_id="1",
                          node="n1", job_id=job_id, item_id=item.id, index=0, owner="alice",
                          created_at=NOW)
    with sqlite3.connect(data_dir / DATABASE_NAME) as conn:
        for statement in (*schema._MIGRATIONS[1], *schema._MIGRATIONS[2]):
            conn.execute(statement)
        conn.execute("INSERT INTO jobs (id, owner, visibility, priority, created_at, status,"
                      " spec) VALUES (?, 'alice', 'private', 0, ?, 'succeeded', ?)",
                     (job_id, NOW.isoformat(timespec="microseconds"), spec.model_dump_json()))
        conn.execute("INSERT INTO items (id, job_id, idx, status, owner, priority, job_seq,"
                     " body) VALUES (?, ?, 0, 'succeeded', 'alice', 0, 1, ?)",
                     (item.id, job_id, item.model_dump_json(exclude={"graph"})))
        conn.execute("INSERT INTO outputs (id, sha256, owner, job_id, item_id, node_id,"
                     " filename, visibility, body) VALUES (?, ?, 'alice', ?, ?, '1', ?,"
                     " 'private', ?)", (output_id, record.sha256, job_id, item.id,
                                        record.filename, record.model_dump_json()))
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    return job_id, output_id


def _old_file(path: Path, script: str, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
        for sql, values in rows:
            conn.execute(sql, values)
    conn.close()


def old_layout(data_dir: Path) -> dict[str, Any]:
    """Write a data directory as the older layout left it; what the test expects back."""
    data_dir.mkdir(parents=True)
    upload, asset = png_bytes(color="#a1b2c3"), png_bytes(color="#c3b2a1")
    job_id, output_id = _old_jobs(data_dir, png_bytes(color="#0f0f0f"))
    _old_file(data_dir / "comfyui-uploads.sqlite3", OLD_UPLOADS, [
        ("INSERT INTO uploads VALUES ('alice', 'input', 'faces', 'photo.png', ?, ?)",
         (_blob(data_dir, upload), NOW.isoformat())),
        ("INSERT INTO counters VALUES ('prompt', 41)", ())])
    asset_id = str(uuid.uuid4())
    _old_file(data_dir / "v2.sqlite3", OLD_V2, [
        ("INSERT INTO assets VALUES (?, 'alice', ?, ?, ?, 'image/png', 'asset.png', ?, ?, NULL)",
         (asset_id, blake3(asset).hexdigest(), _blob(data_dir, asset), len(asset),
          json.dumps(["kept"]), NOW.isoformat())),
        ("INSERT INTO idempotency_keys VALUES ('alice', 'key-1', ?, ?)",
         (job_id, datetime.now(UTC).timestamp()))])
    _old_file(data_dir / "tokens.sqlite3", OLD_TOKENS, [
        ("INSERT INTO tokens VALUES ('0123abcd', ?, 'alice', 0, ?, NULL)",
         (hashlib.sha256(SECRET.encode()).hexdigest(), NOW.isoformat()))])
    return {"job": job_id, "output": output_id, "upload": upload, "asset": asset,
            "asset_id": asset_id}


def test_an_old_data_directory_opens_with_everything_in_one_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = old_layout(data)
    service = start_running(data, tmp_path / "workflows", [])
    try:
        api = Api(service.url)
        job = api.get(f"/v1/jobs/{old['job']}", token=TOKEN)  # the old token works
        assert (job.status_code, job.json()["status"]) == (200, "succeeded")
        output = api.get(f"/v1/outputs/{old['output']}/content", token=TOKEN)
        assert (output.status_code, output.content) == (200, png_bytes(color="#0f0f0f"))

        view = api.get(f"/comfyui/{TOKEN}/view",
                       params={"filename": "photo.png", "subfolder": "faces", "type": "input"})
        assert (view.status_code, view.content) == (200, old["upload"])
        again = api.post(f"/comfyui/{TOKEN}/upload/image", data={"subfolder": "faces"},
                         files={"image": ("photo.png", png_bytes(color="#010203"),
                                          "image/png")})
        assert again.json()["name"] == "photo (1).png"  # the old name is still taken
        assert service.orch.next_queue_number() == 42  # the queue number goes on

        asset = api.get(f"/api/v2/assets/{old['asset_id']}", token=TOKEN).json()
        assert (asset["file_path"], asset["hash"]) == (
            "asset.png", f"blake3:{blake3(old['asset']).hexdigest()}")
        content = api.get(f"/api/v2/assets/{old['asset_id']}/content", token=TOKEN)
        assert content.content == old["asset"]
        reused = api.post("/api/v2/jobs", token=TOKEN, headers={"Idempotency-Key": "key-1"},
                          json={"workflow": {}})
        assert (reused.status_code, reused.json()["error"]["code"]) == (
            422, "idempotency_key_reuse")
    finally:
        service.stop()
    databases = sorted(path.name for path in data.iterdir() if ".sqlite3" in path.name)
    # One database (with SQLite's journal files beside it while open), the rest set aside.
    assert {name.split("-")[0] for name in databases if not name.endswith(".imported")} == {
        DATABASE_NAME}
    assert {"comfyui-uploads.sqlite3.imported", "v2.sqlite3.imported",
            "tokens.sqlite3.imported"} <= set(databases)


def test_a_fresh_data_directory_holds_one_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    service = start_running(data, tmp_path / "workflows", [])
    try:
        token = service.tokens.create("alice")
        api = Api(service.url)
        upload = api.post(f"/comfyui/{token}/upload/image",
                          files={"image": ("a.png", png_bytes(), "image/png")})
        asset = api.post("/api/v2/assets", token=token,
                         files={"file": ("b.png", png_bytes(color="#222222"), "image/png")},
                         data={"content_type": "image/png", "file_path": "b.png"})
        assert (upload.status_code, asset.status_code) == (200, 201)
    finally:
        service.stop()
    files = {path.name for path in data.iterdir() if path.is_file()}
    assert {name.split("-")[0] for name in files} == {DATABASE_NAME}
