"""Where order progress goes: one interface, implemented by the log and by the bridge.

The workflow calls ``publish_order_progress`` on the observer's task queue with the whole
snapshot; an implementation must be idempotent (the same snapshot twice changes nothing)
and tolerate skipped versions (snapshots coalesce while an observer is slow).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from temporalio import activity

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import OrderUpdate

log = logging.getLogger("acmeflow.order")


class OrderObserver(Protocol):
    def publish(self, update: OrderUpdate) -> None: ...


class LoggingObserver:
    """Logs each new event and state once per order; forgets an order once it is final."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, str]] = {}

    def publish(self, update: OrderUpdate) -> None:
        progress = update.progress
        with self._lock:
            events_seen, state_seen = self._seen.get(update.workflow_id, (0, ""))
            for event in progress.events[events_seen:]:
                log.info(
                    "%s %s/%s %s: %s",
                    update.workflow_id,
                    event.kind,
                    event.object_name,
                    event.reason,
                    event.message,
                )
            if progress.state != state_seen:
                log.info(
                    "%s state %s%s",
                    update.workflow_id,
                    progress.state or "starting",
                    f" ({progress.reason})" if progress.reason else "",
                )
            if progress.final:
                self._seen.pop(update.workflow_id, None)
            else:
                self._seen[update.workflow_id] = (len(progress.events), progress.state)


class ObserverActivities:
    def __init__(self, observer: OrderObserver) -> None:
        self._observer = observer

    @activity.defn(name=ActivityName.PUBLISH_ORDER_PROGRESS)
    def publish_order_progress(self, update: OrderUpdate) -> None:
        self._observer.publish(update)
