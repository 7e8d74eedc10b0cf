"""Configuration: precedence, the seed's YAML keys, password never shown, clear errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from jobtui.engine.config import Settings, load_settings
from jobtui.engine.errors import ConfigError
from jobtui.engine.uri import redact_uri


def test_seed_yaml_keys_map_onto_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "session_worker:\n  active: true\n  max_concurrent: 3\n  poll_interval_sec: 5\n"
        "mongodb:\n  uri: ${TEST_URI}\n"
        "jobtui:\n  database: events\n  collections:\n    jobs: event_jobs\n"
        "    batches: event_batches\n"
    )
    s = load_settings(cfg, environ={"TEST_URI": "x"})
    assert (s.concurrency, s.poll_interval, s.database) == (3, 5.0, "events")
    assert (s.collections.jobs, s.collections.batches) == ("event_jobs", "event_batches")


def test_precedence_yaml_then_env_then_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("jobtui:\n  concurrency: 2\n  lease_seconds: 40\n  database: fromyaml\n")
    env = {
        "JOBTUI_CONCURRENCY": "5",
        "MONGODB_URI": "mongodb://u:pw@h/db",
        "JOBTUI_DATABASE": "fromenv",
    }
    s = load_settings(cfg, {"concurrency": 7, "database": None}, environ=env)
    assert s.concurrency == 7  # CLI beats env beats YAML
    assert s.database == "fromenv"
    assert s.lease_seconds == 40  # YAML beats defaults
    assert s.mongodb_uri == "mongodb://u:pw@h/db"
    assert s.safe_uri == "mongodb://u:***@h/db"


def test_no_uri_means_embedded_store_under_data_dir() -> None:
    s = load_settings(None, environ={})
    assert s.mongodb_uri is None
    assert s.store_path.name == "jobtui.db" and "jobtui" in str(s.store_path.parent)
    s2 = load_settings(None, environ={"JOBTUI_STORE": "/tmp/q.db"})
    assert s2.store_path == Path("/tmp/q.db")


@pytest.mark.parametrize(
    "uri,shown",
    [
        (
            "mongodb://alice:s3cr3t@db1:27017,db2/jobs?replicaSet=rs0",
            "mongodb://alice:***@db1:27017,db2/jobs?replicaSet=rs0",
        ),
        (
            "mongodb+srv://bob:p%40ss@cluster0.example.net/?retryWrites=true",
            "mongodb+srv://bob:***@cluster0.example.net/?retryWrites=true",
        ),
        ("mongodb://h:27017", "mongodb://h:27017"),
        ("mongodb://carol:a@b@h/db", "mongodb://carol:***@h/db"),
    ],
)
def test_password_never_shown(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    assert Settings(mongodb_uri=uri).safe_uri == shown


@pytest.mark.parametrize(
    "text,code",
    [
        ("jobtui: [unclosed", "CONFIG_INVALID"),
        ("- just\n- a list\n", "CONFIG_INVALID"),
        ("jobtui:\n  concurrency: zero\n", "CONFIG_INVALID"),
        ("jobtui:\n  concurrency: 0\n", "CONFIG_INVALID"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, code: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert err.value.code == code


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "nope.yaml", environ={})
    assert err.value.code == "CONFIG_UNREADABLE" and "nope.yaml" in err.value.message


# -- one validated model: every setting has an environment variable -----------------

# A valid value for every setting, as its environment variable would hold it. A new
# setting without an entry here fails the test below: add its variable and a doc row.
ENV_SAMPLES: dict[str, tuple[str, object]] = {
    "mongodb_uri": ("mongodb://h/envdb", "mongodb://h/envdb"),
    "database": ("events", "events"),
    "mongodb_db_name": ("seeddb", "seeddb"),
    "collections": ('{"jobs": "event_jobs"}', "event_jobs"),
    "store": ("/tmp/x.db", Path("/tmp/x.db")),
    "concurrency": ("9", 9),
    "concurrency_per_type": ("pdf.transcribe=2, session=1", {"pdf.transcribe": 2, "session": 1}),
    "claim": ("false", False),
    "legacy_job_type": ("legacy", "legacy"),
    "poll_interval": ("0.5", 0.5),
    "lease_seconds": ("45", 45.0),
    "heartbeat_interval": ("2", 2.0),
    "watchdog_interval": ("3", 3.0),
    "shutdown_grace": ("7", 7.0),
    "output_dir": ("/tmp/out", Path("/tmp/out")),
    "cpu_workers": ("3", 3),
    "cpu_niceness": ("5", 5),
    "cpu_memory_limit_mb": ("512", 512),
    "loop_blocked_after": ("2.5", 2.5),
    "input_refuse_hard_links": ("true", True),
    "types": ("pdf.*,session", ["pdf.*", "session"]),
    "input_roots": (f"/a{os.pathsep}/b", [Path("/a"), Path("/b")]),
    "webhook_secret": ("whsec_abc", "whsec_abc"),
    "webhook_attempts": ("2", 2),
    "webhook_timeout": ("1.5", 1.5),
    "retention_completed_days": ("0", 0.0),
    "retention_failed_days": ("12", 12.0),
    "retention_cancelled_days": ("13", 13.0),
    "stall_timeout": ("120", 120.0),
    "retention_logs_days": ("4", 4.0),
    "retention_interval": ("60", 60.0),
    "log_level": ("DEBUG", "debug"),
    "log_format": ("json", "json"),
}


def _value(s: Settings, field: str) -> object:
    return s.collections.jobs if field == "collections" else getattr(s, field)


def test_every_setting_has_an_environment_variable() -> None:
    assert set(ENV_SAMPLES) == set(Settings.model_fields)
    for field, (raw, expected) in ENV_SAMPLES.items():
        s = load_settings(None, environ={f"JOBTUI_{field.upper()}": raw})
        assert _value(s, field) == expected, field


def test_every_setting_and_its_variable_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    for field in Settings.model_fields:
        assert f"`JOBTUI_{field.upper()}`" in doc, field
        assert f"`jobtui.{field}" in doc, field


def test_mongodb_uri_variable_keeps_working_and_nested_collections_variables() -> None:
    env = {"MONGODB_URI": "mongodb://h/a", "JOBTUI_COLLECTIONS__BATCHES": "event_batches"}
    s = load_settings(None, environ=env)
    assert s.mongodb_uri == "mongodb://h/a" and s.collections.batches == "event_batches"
    assert s.collections.jobs == "jobs"  # the other collections keep their defaults
    both = load_settings(None, environ={**env, "JOBTUI_MONGODB_URI": "mongodb://h/b"})
    assert both.mongodb_uri == "mongodb://h/b"  # jobtui's own name wins
    assert load_settings(None, environ={"MONGODB_URI": "none"}).mongodb_uri is None


def test_bad_environment_value_names_its_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ={"JOBTUI_CONCURRENCY": "many"})
    assert err.value.code == "CONFIG_INVALID" and "JOBTUI_CONCURRENCY" in err.value.message


# -- the environment reader (engine/config.py: _from_environment) ------------------


def test_variable_names_in_any_case_only_with_the_prefix() -> None:
    env = {"jobtui_concurrency": "3", "JobTui_Lease_Seconds": "40", "POLL_INTERVAL": "9"}
    s = load_settings(None, environ=env)
    assert (s.concurrency, s.lease_seconds, s.poll_interval) == (3, 40.0, 2.0)
    assert s.model_fields_set == {"concurrency", "lease_seconds"}
    lower = load_settings(None, environ={"mongodb_uri": "mongodb://h/low"})
    assert lower.mongodb_uri == "mongodb://h/low"


def test_empty_variable_is_unset_and_lets_the_layer_below_show(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("jobtui:\n  concurrency: 2\n")
    env = {"JOBTUI_CONCURRENCY": "", "JOBTUI_TYPES": "", "JOBTUI_COLLECTIONS__JOBS": ""}
    s = load_settings(cfg, environ=env)
    assert (s.concurrency, s.types, s.collections.jobs) == (2, None, "jobs")
    assert "types" not in s.model_fields_set
    uri = {"JOBTUI_MONGODB_URI": "", "MONGODB_URI": "mongodb://h/seed"}
    assert load_settings(None, environ=uri).mongodb_uri == "mongodb://h/seed"


def test_uri_precedence_option_then_jobtui_variable_then_mongodb_uri() -> None:
    env = {"MONGODB_URI": "mongodb://h/seed", "JOBTUI_MONGODB_URI": "mongodb://h/ours"}
    assert load_settings(None, environ=env).mongodb_uri == "mongodb://h/ours"
    cli = load_settings(None, {"mongodb_uri": "mongodb://h/cli"}, environ=env)
    assert cli.mongodb_uri == "mongodb://h/cli"
    # "none" in the winning variable means no URI, whatever the other one says
    off = load_settings(None, environ={**env, "JOBTUI_MONGODB_URI": "none"})
    assert off.mongodb_uri is None


def test_collections_json_then_nested_variables_then_yaml_merged(tmp_path: Path) -> None:
    env = {
        "JOBTUI_COLLECTIONS": '{"jobs": "event_jobs", "logs": "event_logs"}',
        "JOBTUI_COLLECTIONS__LOGS": "nested_logs",  # one key beats the JSON's
    }
    s = load_settings(None, environ=env)
    assert (s.collections.jobs, s.collections.logs, s.collections.batches) == (
        "event_jobs",
        "nested_logs",
        "batches",
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text("jobtui:\n  collections:\n    batches: yaml_batches\n    jobs: yaml_jobs\n")
    both = load_settings(cfg, environ={"JOBTUI_COLLECTIONS__JOBS": "env_jobs"})
    assert (both.collections.jobs, both.collections.batches) == ("env_jobs", "yaml_batches")


def test_per_type_limits_from_one_variable_or_one_per_type() -> None:
    env = {
        "JOBTUI_CONCURRENCY_PER_TYPE": "pdf.transcribe=2",
        "JOBTUI_CONCURRENCY_PER_TYPE__NOOP": "1",
    }
    s = load_settings(None, environ=env)
    assert s.concurrency_per_type == {"pdf.transcribe": 2, "noop": 1}


@pytest.mark.parametrize(
    "name,value,setting",
    [
        ("JOBTUI_COLLECTIONS", "event_jobs", "collections"),  # not JSON
        ("JOBTUI_COLLECTIONS", "[1]", "collections"),  # JSON, not an object
        ("JOBTUI_COLLECTIONS__JOB", "event_jobs", "collections.job"),  # no such key
        ("JOBTUI_LOG_LEVEL", "loud", "log_level"),
        ("JOBTUI_CONCURRENCY_PER_TYPE", "pdf.transcribe", "concurrency_per_type"),
        ("JOBTUI_CLAIM", "perhaps", "claim"),
        ("jobtui_lease_seconds", "-1", "lease_seconds"),
    ],
)
def test_bad_variable_is_config_invalid_naming_setting_and_variable(
    name: str, value: str, setting: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ={name: value})
    assert err.value.code == "CONFIG_INVALID"
    assert f"invalid setting {setting} " in err.value.message
    assert name.upper().partition("__")[0] in err.value.message


def test_bad_value_error_shows_no_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from jobtui.tui.cli import main

    env = {
        "MONGODB_URI": "mongodb://alice:hunter2@h/db",
        "JOBTUI_WEBHOOK_SECRET": "whsec_hunter2",
        "JOBTUI_WEBHOOK_ATTEMPTS": "hunter2",  # a secret pasted into the wrong variable
    }
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ=env)
    assert "JOBTUI_WEBHOOK_ATTEMPTS" in err.value.message and "hunter2" not in err.value.message
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["jobs", "--store", str(tmp_path / "q.db")]) == 2
    err_text = capsys.readouterr().err
    assert "CONFIG_INVALID" in err_text and "hunter2" not in err_text


def test_process_environment_is_read_only_without_an_explicit_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBTUI_CONCURRENCY", "11")
    assert load_settings(None).concurrency == 11
    assert load_settings(None, environ={}).concurrency == 4


# -- strict keys with suggestions ----------------------------------------------------


@pytest.mark.parametrize(
    "text,bad,suggested",
    [
        ("jobtui:\n  concurency: 3\n", "jobtui.'concurency'", "'concurrency'"),
        ("jobtui:\n  lease_secs: 3\n", "jobtui.'lease_secs'", "'lease_seconds'"),
        ("jobtui:\n  collections:\n    job: event_jobs\n", "'job'", "'jobs'"),
        (
            "session_worker:\n  max_concurent: 3\n",
            "session_worker.'max_concurent'",
            "'max_concurrent'",
        ),
        ("session_worker:\n  poll_interval: 3\n", "'poll_interval'", "'poll_interval_sec'"),
        ("mongodb:\n  db_nmae: events\n", "mongodb.'db_nmae'", "'db_name'"),
        ("jobtiu:\n  concurrency: 3\n", "'jobtiu'", "'jobtui'"),
        ("session_workers:\n  active: true\n", "'session_workers'", "'session_worker'"),
    ],
)
def test_unknown_key_is_an_error_that_suggests_the_closest(
    tmp_path: Path, text: str, bad: str, suggested: str
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert err.value.code == "CONFIG_INVALID"
    assert bad in err.value.message and f"did you mean {suggested}?" in err.value.message


def test_unknown_key_via_the_cli_exit_2_no_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from jobtui.tui.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("jobtui:\n  webhook_secert: x\n")
    assert main(["--config", str(cfg), "jobs", "--store", str(tmp_path / "q.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jobtui: CONFIG_INVALID:") and "Traceback" not in err
    assert "'webhook_secert'" in err and "did you mean 'webhook_secret'?" in err


def test_the_applications_own_sections_and_mongodb_keys_are_left_alone(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "server:\n  port: 5000\n  secret_key: ${NOT_SET_AND_NOT_OURS}\n"
        "processors:\n  pdf: {max_pages: 10}\n"
        "mongodb:\n  uri: mongodb://h\n  db_name: events\n  max_pool_size: 50\n"
    )
    s = load_settings(cfg, environ={})
    assert (s.mongodb_uri, s.database) == ("mongodb://h", "events")


# -- the seed's session_worker keys -------------------------------------------------


def test_seed_worker_keys_active_and_per_type_limits(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "session_worker:\n  active: false\n  max_concurrent: 6\n  poll_interval_sec: 5\n"
        "  max_concurrent_per_type:\n    session: 2\n    pdf.transcribe: 1\n"
    )
    s = load_settings(cfg, environ={})
    assert s.claim is False and s.concurrency == 6 and s.poll_interval == 5.0
    assert s.concurrency_per_type == {"session": 2, "pdf.transcribe": 1}
    # jobtui's own key wins over the seed's, so the old manager can be switched off
    # (session_worker.active: false) while this one claims
    cfg.write_text(cfg.read_text() + "jobtui:\n  claim: true\n")
    assert load_settings(cfg, environ={}).claim is True
    assert load_settings(None, environ={}).claim is True  # the default


def test_generic_worker_is_the_seeds_rename(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("generic_worker:\n  max_concurrent: 2\n")
    assert load_settings(cfg, environ={}).concurrency == 2


# -- the database name ------------------------------------------------------------


@pytest.mark.parametrize(
    "yaml_text,env,expected",
    [
        ("mongodb:\n  uri: mongodb://h/fromuri\n  db_name: seed\n", {}, ("fromuri", "URI path")),
        ("mongodb:\n  uri: mongodb://h/\n  db_name: seed\n", {}, ("seed", "mongodb.db_name")),
        ("mongodb:\n  uri: mongodb://h/?replicaSet=rs\n", {}, ("jobtui", "default")),
        ("mongodb:\n  uri: mongodb://u:p@h1,h2/my%20db?x=1\n", {}, ("my db", "URI path")),
        ("mongodb:\n  uri: mongodb://h/fromuri\n", {"JOBTUI_DATABASE": "x"}, ("x", "setting")),
        ("jobtui:\n  database: ours\nmongodb:\n  uri: mongodb://h/u\n", {}, ("ours", "setting")),
    ],
)
def test_database_uri_path_then_db_name_then_jobtui(
    tmp_path: Path, yaml_text: str, env: dict[str, str], expected: tuple[str, str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    s = load_settings(cfg, environ=env)
    assert s.database_source == expected and s.database == expected[0]


async def test_first_line_names_database_and_collections() -> None:
    from jobtui.engine.store.factory import store_banner
    from jobtui.engine.store.mongo import MongoStore

    s = Settings(mongodb_uri="mongodb://alice:pw@h/events")
    s.collections.jobs, s.collections.batches = "event_jobs", "event_batches"
    store = MongoStore.in_memory(database=s.database)
    line = store_banner(s, store)
    assert "database events (from URI path)" in line
    assert "collections event_jobs, event_batches, job_logs, workers" in line
    assert "pw" not in line.replace("mongomock", "")


# -- environment variables in the YAML --------------------------------------------


def test_unset_variable_is_config_invalid_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobtui.tui.cli import main

    cfg = tmp_path / "config.yaml"
    cfg.write_text("mongodb:\n  uri: ${JOBTUI_TEST_UNSET_URI}\n")
    monkeypatch.delenv("JOBTUI_TEST_UNSET_URI", raising=False)
    start = time.monotonic()
    assert main(["--config", str(cfg), "jobs"]) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - start < 2  # no 5 s server-selection wait
    assert "CONFIG_INVALID" in err and "JOBTUI_TEST_UNSET_URI" in err and "mongodb.uri" in err
    assert "STORE_UNREACHABLE" not in err


def test_variables_and_defaults_are_expanded(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "mongodb:\n  uri: ${U}\njobtui:\n  output_dir: ${OUT:-/srv/out}\n"
        "  collections:\n    jobs: ${PREFIX}_jobs\n"
    )
    s = load_settings(cfg, environ={"U": "mongodb://h/a", "PREFIX": "event"})
    assert (s.mongodb_uri, s.output_dir, s.collections.jobs) == (
        "mongodb://h/a",
        Path("/srv/out"),
        "event_jobs",
    )
    with pytest.raises(ConfigError) as err:  # set but empty is no better than unset
        load_settings(cfg, environ={"U": "", "PREFIX": "event"})
    assert "${U}" in err.value.message


# -- secrets in error messages (issue 12, item 9) ----------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'mongodb:\n  uri: "mongodb://alice:hunter2@db.example:27017/events\n',
        "mongodb:\n  uri: mongodb://alice:hunter2@db.example/events: [\n",
        "jobtui:\n  webhook_secret: hunter2\n  concurrency: [\n",
        "mongodb:\n  password: hunter2 {\n  - x\n",
    ],
)
def test_yaml_error_never_prints_the_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    from jobtui.tui.cli import main

    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    assert main(["--config", str(cfg), "jobs"]) == 2
    err = capsys.readouterr().err
    assert "CONFIG_INVALID" in err and "line " in err
    assert "hunter2" not in err


@pytest.mark.parametrize(
    "message",
    [
        "cannot reach mongodb://alice:hunter2@h:27017/x: timeout",
        "bad line: password: hunter2",
        "  secret_key: hunter2",
        "X-Api-Key=hunter2&y=1",
        'bad value {"api_token": "hunter2"}',
        "uri=mongodb+srv://bob:hunter2@cluster0/?tlsCertificateKeyFilePassword=hunter2",
    ],
)
def test_config_and_store_errors_redact_secrets(message: str) -> None:
    from jobtui.engine.store.base import StoreError

    for exc in (ConfigError("X", message), StoreError("X", message)):
        assert "hunter2" not in exc.message and "hunter2" not in str(exc)
        assert "***" in exc.message


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "passphrase",
        "api_token",
        "secret_key",
        "Authorization",
        "auth",
        "cookie",
        "private_key",
        "access-key",
        "X-Api-Key",
        "credentials",
    ],
)
def test_error_text_hides_every_key_the_structured_redaction_hides(key: str) -> None:
    """redact_secrets (error messages) and is_secret_key (parameters, headers shown by
    the console and `jobtui show`) keep one idea of a secret key name."""
    from jobtui.engine.redact import is_secret_key
    from jobtui.engine.uri import redact_secrets

    assert is_secret_key(key)
    assert "hunter2" not in redact_secrets(f"bad value {key}: hunter2")
    assert "hunter2" not in redact_secrets(f'{{"{key}": "hunter2"}}')


@pytest.mark.parametrize("key", ["author", "authority", "host", "path"])
def test_error_text_keeps_ordinary_keys(key: str) -> None:
    """ "auth" hides auth and Authorization, not author."""
    from jobtui.engine.redact import is_secret_key
    from jobtui.engine.uri import redact_secrets

    assert not is_secret_key(key)
    assert redact_secrets(f"{key}: visible") == f"{key}: visible"


# -- settings the engine applies ---------------------------------------------------


async def test_claim_false_claims_nothing_and_per_type_caps_apply(tmp_path: Path) -> None:
    import asyncio
    from typing import Any

    from jobtui.engine.context import JobContext
    from jobtui.engine.models import Job, JobStatus
    from jobtui.engine.registry import default_registry
    from jobtui.engine.store.sqlite import SQLiteStore
    from jobtui.engine.worker import Engine
    from tests.util import wait_for

    release = asyncio.Event()
    reg = default_registry()

    @reg.handler("hold")
    async def hold(ctx: JobContext, params: Any) -> None:
        await release.wait()

    fast = {"poll_interval": 0.05, "heartbeat_interval": 0.1, "watchdog_interval": 0.1}
    store = SQLiteStore(tmp_path / "q.db")
    await store.open()
    jobs = [Job(job_type="hold") for _ in range(5)]
    await store.insert_jobs(jobs)

    async def count(status: JobStatus) -> int:
        got = [await store.get_job(j.job_id) for j in jobs]
        return sum(1 for j in got if j is not None and j.status is status)

    watcher = Engine(store, reg, Settings(claim=False, output_dir=tmp_path, **fast))
    await watcher.start()
    try:
        # A claiming engine next to it shows the watcher had every chance to claim.
        worker = Engine(
            store,
            reg,
            Settings(concurrency=4, concurrency_per_type={"hold": 2}, output_dir=tmp_path, **fast),
        )
        await worker.start()
        try:
            await wait_for(lambda: _is(count(JobStatus.PROCESSING), 2), what="two running")
            # A job of another type is claimed next to them: the claim loops ran with
            # "hold" jobs pending and free slots, and still the cap of 2 held.
            quick = Job(job_type="noop")
            await store.insert_jobs([quick])
            watcher.wake()
            worker.wake()
            await wait_for(lambda: _done(store, quick.job_id), what="the other type's job")
            assert len(worker.running) == 2 and await count(JobStatus.PENDING) == 3
            assert watcher.claims == 0
            release.set()
            await wait_for(lambda: _is(count(JobStatus.COMPLETED), 5), what="all done")
            assert watcher.claims == 0 and worker.claims == 6
        finally:
            await worker.stop(grace=1)
    finally:
        await watcher.stop(grace=1)
        await store.close()


async def _is(awaitable: object, expected: int) -> bool:
    return await awaitable == expected  # type: ignore[misc]


async def _done(store: object, job_id: str) -> bool:
    job = await store.get_job(job_id)  # type: ignore[attr-defined]
    return job is not None and job.status.terminal


def test_uri_path_database_is_used_and_named_first_on_a_real_server(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nx_uri: str
) -> None:
    """On nx-27017: the database in the URI's path is where jobs go (not 'jobtui'),
    and the first line of enqueue, and doctor, name it and the collections."""
    import uuid

    from pymongo import MongoClient

    from jobtui.tui.cli import main

    db = f"fromuri_{uuid.uuid4().hex[:8]}"
    (tmp_path / "a.txt").write_text("x")
    uri = f"{nx_uri}/{db}"
    argv = ["--mongodb-uri", uri, "--jobs-collection", "event_jobs"]
    assert main([*argv, "enqueue", str(tmp_path / "a.txt"), "--type", "noop"]) == 0
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert f"database {db} (from URI path)" in first
    assert "collections event_jobs, batches, job_logs, workers" in first
    main([*argv, "doctor"])
    out = capsys.readouterr().out
    assert any(ln.startswith("ok   store") and f"database {db}" in ln for ln in out.splitlines())
    client: MongoClient[dict[str, object]] = MongoClient(nx_uri, serverSelectionTimeoutMS=5000)
    try:
        assert client[db]["event_jobs"].count_documents({}) == 1
        assert "jobtui" not in client.list_database_names() or (
            client["jobtui"]["event_jobs"].count_documents({}) == 0
        )
    finally:
        client.close()


def test_a_misspelt_environment_variable_is_pointed_out(caplog: pytest.LogCaptureFixture) -> None:
    env = {"JOBTUI_CONCURENCY": "3", "JOBTUI_TEST_MONGODB_URI": "mongodb://x", "PATH": "/bin"}
    s = load_settings(None, environ=env)
    assert s.concurrency == 4  # not applied...
    assert "JOBTUI_CONCURENCY is not a setting; did you mean JOBTUI_CONCURRENCY?" in caplog.text
    assert "TEST_MONGODB_URI" not in caplog.text  # ...and other tools' variables left alone


def test_claiming_off_worker_refuses_and_run_still_processes_its_batch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from jobtui.tui.cli import main

    cfg = tmp_path / "config.yaml"
    cfg.write_text("session_worker:\n  active: false\n")
    db = str(tmp_path / "q.db")
    assert main(["--config", str(cfg), "worker", "--store", db]) == 2
    err = capsys.readouterr().err
    assert "jobtui: CLAIMING_OFF:" in err and "jobtui.claim: true" in err
    (tmp_path / "a.txt").write_text("x")
    args = ["--config", str(cfg), "run", str(tmp_path / "a.txt"), "--type", "noop"]
    assert main([*args, "--store", db, "--json"]) == 0
    assert '"completed": 1' in capsys.readouterr().out
