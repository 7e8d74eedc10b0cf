"""Secrets never shown (engine/redact.py, the detail screen) and the detail log that
appends only new lines instead of re-reading the whole log every second."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, SecretStr
from textual.widgets import Log, Static

from jobtui.engine.api import OperatorAPI
from jobtui.engine.models import Job, JobError, JobStatus, LogEntry
from jobtui.engine.redact import REDACTED, is_secret_key, redact, redact_parameters, secret_fields
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.tui.app import JobtuiApp
from jobtui.tui.screens.detail import LOG_TAIL, DetailScreen
from jobtui.tui.widgets.tables import KeyedTable
from tests.test_console_data import until

pytestmark = pytest.mark.usefixtures("console_config_dir")


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


class VaultParams(BaseModel):
    path: str
    passcode: str = Field(json_schema_extra={"secret": True})  # marked: name says nothing
    key: SecretStr | None = None
    pages: int = 1


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("accessToken", True),
        ("client-secret", True),
        ("api_key", True),
        ("Authorization", True),
        ("max_tokens", False),
        ("author", False),
        ("path", False),
        ("languages", False),
    ],
)
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_model_marks_and_key_names_are_redacted_at_every_depth() -> None:
    assert secret_fields(VaultParams) == {"passcode", "key"}
    params = {
        "path": "/a.pdf",
        "passcode": "1234",
        "key": "k",
        "pages": 3,
        "nested": {"token": "abc", "list": [{"password": "pw"}, "plain"]},
        "password": None,  # no password given: saying so reveals nothing
    }
    shown = redact_parameters(params, VaultParams)
    assert shown == {
        "path": "/a.pdf",
        "passcode": REDACTED,
        "key": REDACTED,
        "pages": 3,
        "nested": {"token": REDACTED, "list": [{"password": REDACTED}, "plain"]},
        "password": None,
    }
    assert params["passcode"] == "1234"  # a copy: the job itself is unchanged
    # a marked field counts only at the top; deeper, only names count
    assert redact({"x": {"passcode": "1"}}, {"passcode"}) == {"x": {"passcode": "1"}}


async def test_detail_screen_redacts_parameters_results_and_error_details(
    store: SQLiteStore,
) -> None:
    registry = default_registry()

    @registry.handler("vault", params=VaultParams)
    async def vault(ctx: Any, params: VaultParams) -> None:
        return None

    job = Job(
        job_type="vault",
        status=JobStatus.FAILED,
        parameters={"path": "/v.pdf", "passcode": "s3cr3t-passcode", "pages": 2},
        results={"api_token": "s3cr3t-token"},
        error=JobError(code="BAD", message="no", details={"password": "s3cr3t-pw"}),
    )
    pdf_job = Job(
        job_type="pdf.transcribe", parameters={"path": "/e.pdf", "password": "s3cr3t-pdf"}
    )
    await store.insert_jobs([job, pdf_job])
    api = OperatorAPI(store, registry)
    app = JobtuiApp(api=api, refresh_interval=30)
    async with app.run_test(size=(120, 40)) as pilot:
        for j in (job, pdf_job):
            app.push_screen(DetailScreen(j.job_id))
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, DetailScreen)
            await until(lambda s=screen: s.detail is not None, what="detail")  # type: ignore[misc]
            text = " ".join(str(s.render()) for s in screen.query(Static))
            assert "s3cr3t" not in text
            assert REDACTED in text
            app.pop_screen()
            await pilot.pause()
        text_pdf = str(api.shown_parameters(pdf_job))
        assert "s3cr3t" not in text_pdf and "/e.pdf" in text_pdf


async def test_detail_log_appends_only_new_lines(store: SQLiteStore) -> None:
    job = Job(job_type="noop", status=JobStatus.PROCESSING, parameters={})
    await store.insert_jobs([job])
    await store.append_logs(
        [LogEntry(job_id=job.job_id, seq=i, message=f"line {i}") for i in range(3000)]
    )
    app = JobtuiApp(api=OperatorAPI(store, default_registry()), refresh_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(DetailScreen(job.job_id))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        log = screen.query_one("#detail-log", Log)
        await until(lambda: log.line_count == 3000, what="the full log")
        first_line = log.lines[0]
        await store.append_logs(
            [LogEntry(job_id=job.job_id, seq=3000 + i, message=f"new {i}") for i in range(5)]
        )
        await until(lambda: log.line_count == 3005, what="five new lines")
        await until(lambda: screen.fetches >= 5, what="more refreshes")
        assert log.line_count == 3005  # nothing doubled by later refreshes
        assert log.lines[0] is first_line  # appended, never cleared and rewritten
        assert log.lines[-1].endswith("new 4")
        # the whole log was read once; every later refresh reads only the tail
        assert screen.log_limits[0] > 3000
        assert set(screen.log_limits[1:]) == {LOG_TAIL}
        # more new lines at once than the tail holds: nothing is skipped
        await store.append_logs(
            [
                LogEntry(job_id=job.job_id, seq=4000 + i, message=f"burst {i}")
                for i in range(LOG_TAIL + 10)
            ]
        )
        await until(lambda: log.line_count == 3005 + LOG_TAIL + 10, what="the burst")
        assert log.lines[3005].endswith("burst 0")


async def test_main_log_tail_appends_only_new_lines(store: SQLiteStore) -> None:
    job = Job(job_type="noop", status=JobStatus.PROCESSING, parameters={"path": "/a.pdf"})
    await store.insert_jobs([job])
    await store.append_logs([LogEntry(job_id=job.job_id, seq=i, message=f"l{i}") for i in range(5)])
    app = JobtuiApp(api=OperatorAPI(store, default_registry()), refresh_interval=30)
    async with app.run_test(size=(120, 40)):
        await app.refresh_now()
        assert app.main.query_one("#jobs", KeyedTable).select_key(job.job_id)
        await app.refresh_now()
        log = app.main.query_one("#log", Log)
        await until(lambda: log.line_count == 5, what="the tail")
        first = log.lines[0]
        await store.append_logs([LogEntry(job_id=job.job_id, seq=5, message="l5")])
        await app.refresh_now()
        await app.refresh_now()  # an unchanged refresh adds nothing
        assert log.line_count == 6 and log.lines[0] is first
        assert log.lines[-1].endswith("l5")
