"""core/v1 Events for Orders and Challenges, each created exactly once.

An event's name derives from its object, the workflow time it happened and its sequence
number, so a snapshot delivered twice (or a history replayed after a reset) names the
same Event and the second create is refused as a duplicate. Names sort by time, so
``kubectl describe`` lists events of the same second in the order they happened.
"""

from __future__ import annotations

import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from kubernetes.client.exceptions import ApiException

from acmeflow.contracts.progress import OrderEvent
from acmeflow.crds.models import API_VERSION
from acmeflow.k8s_bridge.kube_api import KubeApi

COMPONENT = "acmeflow"
_REMEMBERED = 20000


@dataclass(frozen=True)
class InvolvedObject:
    kind: str
    namespace: str
    name: str
    uid: str


def event_name(involved: InvolvedObject, event: OrderEvent) -> str:
    millis = int(datetime.fromisoformat(event.at).timestamp() * 1000)
    return f"{involved.name}.{millis:x}{event.seq:04x}"


def event_body(involved: InvolvedObject, event: OrderEvent) -> dict[str, object]:
    timestamp = datetime.fromisoformat(event.at).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(involved, event), "namespace": involved.namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": involved.kind,
            "name": involved.name,
            "namespace": involved.namespace,
            "uid": involved.uid,
        },
        "reason": event.reason,
        "message": event.message,
        "type": event.type,
        "source": {"component": COMPONENT},
        "reportingComponent": f"{COMPONENT}.io/bridge",
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }


class EventRecorder:
    """Creates events once; remembers recent names to skip the API call on repeats."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api
        self._lock = threading.Lock()
        self._created: OrderedDict[str, None] = OrderedDict()

    def record(self, involved: InvolvedObject, event: OrderEvent) -> bool:
        """True if this call created the Event."""
        key = f"{involved.namespace}/{event_name(involved, event)}/{involved.uid}"
        with self._lock:
            if key in self._created:
                return False
        try:
            self._api.core.create_namespaced_event(involved.namespace, event_body(involved, event))
            created = True
        except ApiException as error:
            if error.status not in (409, 404):
                raise
            created = False
        with self._lock:
            self._created[key] = None
            while len(self._created) > _REMEMBERED:
                self._created.popitem(last=False)
        return created
