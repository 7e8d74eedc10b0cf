"""Store verbs the CLI needs, on every backend: a claim narrowed to a scope (one
batch plus named jobs), id lookup by prefix, and progress cleared when a job goes
back to the queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobtui.engine.models import Batch, Job, JobStatus, Outcome, Progress
from jobtui.engine.store.base import ClaimScope, Store
from tests.test_store_contract import MIN, T0, claim, token


async def test_claim_with_scope_takes_only_the_batch_and_named_jobs(store: Store) -> None:
    foreign = [Job(job_type="a", batch_id="other") for _ in range(3)]
    loose = Job(job_type="a")  # no batch at all
    mine = [Job(job_type="a", batch_id="mine") for _ in range(2)]
    named = Job(job_type="a", batch_id="other")
    # Foreign jobs first: an unscoped claim would take them before ours.
    await store.insert_jobs([*foreign, loose])
    await store.insert_jobs([*mine, named])
    scope = ClaimScope(batch_id="mine", job_ids=frozenset({named.job_id}))
    got = await store.claim(
        worker_id="w",
        slots={"a": 10},
        limit=10,
        lease_seconds=30,
        timeouts={},
        now=T0,
        scope=scope,
    )
    assert {j.job_id for j in got} == {j.job_id for j in mine} | {named.job_id}
    assert all(j.status is JobStatus.PROCESSING for j in got)
    # Nothing else in scope: the foreign jobs stay pending for everyone else.
    again = await store.claim(
        worker_id="w",
        slots={"a": 10},
        limit=10,
        lease_seconds=30,
        timeouts={},
        now=T0,
        scope=scope,
    )
    assert again == []
    only_named = ClaimScope(job_ids=frozenset({foreign[1].job_id}))
    got = await store.claim(
        worker_id="w",
        slots={"a": 10},
        limit=10,
        lease_seconds=30,
        timeouts={},
        now=T0,
        scope=only_named,
    )
    assert [j.job_id for j in got] == [foreign[1].job_id]
    rest = await claim(store, {"a": 10})  # unscoped: everything left
    assert {j.job_id for j in rest} == {foreign[0].job_id, foreign[2].job_id, loose.job_id}


async def test_scoped_claim_respects_slots_and_types(store: Store) -> None:
    await store.insert_jobs([Job(job_type=t, batch_id="b") for t in ("a", "a", "a", "b")])
    scope = ClaimScope(batch_id="b")
    got = await store.claim(
        worker_id="w",
        slots={"a": 2, "c": 1},
        limit=5,
        lease_seconds=30,
        timeouts={},
        now=T0,
        scope=scope,
    )
    assert [j.job_type for j in got] == ["a", "a"]


async def test_ids_with_prefix(store: Store) -> None:
    ids = ["abcdef01" + "0" * 24, "abcdef02" + "0" * 24, "abcdff00" + "0" * 24]
    await store.insert_jobs([Job(job_id=i, job_type="a") for i in ids])
    assert await store.ids_with_prefix("abcdef") == ids[:2]
    assert await store.ids_with_prefix("abcdef02") == [ids[1]]
    assert await store.ids_with_prefix("abcdf") == [ids[2]]
    assert await store.ids_with_prefix("abce") == []
    assert await store.ids_with_prefix("abcd", limit=2) == ids[:2]
    assert await store.ids_with_prefix("abcdef", batches=True) == []
    await store.create_batch(Batch(batch_id="abcdef99" + "1" * 24, name="x"))
    assert await store.ids_with_prefix("abcdef", batches=True) == ["abcdef99" + "1" * 24]


@pytest.mark.parametrize("refund", [True, False])
async def test_back_to_pending_clears_progress(store: Store, refund: bool) -> None:
    await store.insert_jobs([Job(job_type="a")])
    j = (await claim(store, {"a": 1}))[0]
    assert await store.set_progress(j.job_id, token(j), Progress(percent=55, step="x"))
    back = Outcome(status=JobStatus.PENDING, refund_attempt=refund)
    assert await store.finish(j.job_id, token(j), back, now=T0 + MIN)
    stored = await store.get_job(j.job_id)
    assert stored is not None and stored.status is JobStatus.PENDING
    assert stored.progress is None or stored.progress.percent == 0


async def test_scoped_claim_keeps_each_types_cap_and_deadline(store: Store) -> None:
    """A scope over several job types: each type gets at most its slots, from the
    batch and from the named jobs alike, and a timed type's jobs get its deadline."""
    mine = [Job(job_type=t, batch_id="mine") for t in ("a", "a", "b", "b", "c")]
    named = [Job(job_type=t, batch_id="other") for t in ("a", "c", "c")]
    await store.insert_jobs([*mine, *named])
    scope = ClaimScope(batch_id="mine", job_ids=frozenset(j.job_id for j in named))
    got = await store.claim(
        worker_id="w",
        slots={"a": 10, "b": 1, "c": 2},
        limit=10,
        lease_seconds=30,
        timeouts={"c": 60},
        now=T0,
        scope=scope,
    )
    by_type = {t: sum(1 for j in got if j.job_type == t) for t in ("a", "b", "c")}
    assert by_type == {"a": 3, "b": 1, "c": 2}, by_type
    ids = {j.job_id for j in got}
    assert ids <= {j.job_id for j in [*mine, *named]}
    assert named[0].job_id in ids  # the named "a" came with the batch's two
    for j in got:
        stored = await store.get_job(j.job_id)
        assert stored is not None and stored.status is JobStatus.PROCESSING
        assert (stored.timeout_at is not None) == (j.job_type == "c"), stored
    rest = await store.claim(
        worker_id="w",
        slots={"a": 10, "b": 10, "c": 10},
        limit=10,
        lease_seconds=30,
        timeouts={},
        now=T0,
        scope=scope,
    )
    assert len(rest) == 2 and {j.job_type for j in rest} <= {"b", "c"}
    assert ids.isdisjoint(j.job_id for j in rest)


@pytest.mark.parametrize("names", [["j1", "j2"], []], ids=["named jobs", "batch only"])
def test_scoped_claim_reads_no_other_batch(tmp_path: Path, names: list[str]) -> None:
    """SQLite: the scope's rows come from indexes: the batch's in claim order from
    jobs_claim_batch (never a list of all its pending jobs: that cost grew with the
    batch, ~5 ms a claim at 10,000), the named jobs by primary key (never a scan of
    their type's queue). Nothing else is read. The list of names is read once, and
    not at all when there are none (a json_each per type cost ~0.1 ms each)."""
    from datetime import UTC, datetime

    from jobtui.engine.store import _sqlite_schema as schema
    from jobtui.engine.store._sqlite_rows import claim_statement

    conn = schema.connect(tmp_path / "plan.db", 5.0)
    sql, params = claim_statement(
        worker_id="w",
        slots={"a": 2, "b": 1},
        limit=3,
        lease_seconds=30,
        timeouts={},
        now=datetime.now(UTC),
        scope=("batch", names),
    )
    plan = "\n".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "SCAN jobs" not in plan, plan
    assert plan.count("COVERING INDEX jobs_claim_batch (batch_id=? AND job_type=?)") == 2, plan
    lookups = 2 if names else 0
    assert plan.count("SEARCH j USING INDEX sqlite_autoindex_jobs_1 (job_id=?)") == lookups, plan
    assert plan.count("json_each VIRTUAL TABLE") == (1 if names else 0), plan
    assert "jobs_batch" not in plan and "jobs_claim (" not in plan, plan
