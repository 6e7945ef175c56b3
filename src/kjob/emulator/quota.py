"""Weekly accelerator quota, per account, in UTC.

Kaggle does not document when the week starts; the emulator assumes what its quota page
shows users: a reset every Saturday at 00:00 UTC. A session counts from the moment it starts
running until it ends (or now), and only the part of it inside the current week; deleted
kernels' sessions still count, as on Kaggle, where deleting a notebook refunds nothing.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

RESET_WEEKDAY = 5  # Saturday (Monday is 0)
WEEKLY_HOURS = {"gpu": 30.0, "tpu": 20.0}


def week_start(now: datetime) -> datetime:
    """The last reset at or before `now` (an aware datetime), in UTC."""
    now = now.astimezone(timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=(midnight.weekday() - RESET_WEEKDAY) % 7)


def refresh_time(now: datetime) -> datetime:
    return week_start(now) + timedelta(days=7)


def used_seconds(intervals: Iterable[tuple[float, float]], now: datetime) -> float:
    """Seconds of `intervals` (start, end as Unix times) that fall in the current week."""
    since = week_start(now).timestamp()
    return sum(max(0.0, end - max(start, since)) for start, end in intervals)


def duration(seconds: float) -> str:
    """A protobuf duration ("108000s", "1.5s"), written here: kagglesdk's own drops days."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def timestamp(moment: datetime) -> str:
    """A protobuf timestamp in UTC, as Kaggle writes them."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
