"""Storage: the narrow interface (``base``) and its implementations."""

from jobtui.engine.store.base import InsertResult, JobCursor, LeaseState, Store, StoreError

__all__ = ["InsertResult", "JobCursor", "LeaseState", "Store", "StoreError"]
