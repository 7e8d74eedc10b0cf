"""Configuration: precedence, the seed's YAML keys, password never shown, clear errors."""

from __future__ import annotations

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
