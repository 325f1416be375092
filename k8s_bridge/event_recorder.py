"""core/v1 Events for Orders and Challenges, each created exactly once.

An event's name derives from its object, the workflow time it happened and its sequence
number, so a snapshot delivered twice (or a history replayed after a reset) names the
same Event and the second create is refused as a duplicate. Names sort by time, so
``kubectl describe`` lists events of the same second in the order they happened.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from acmeflow.contracts.progress import OrderEvent
from acmeflow.crds.models import API_VERSION
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.timestamps import now, timestamp

COMPONENT = "acmeflow"
CLUSTER_EVENTS_NAMESPACE = "default"
"""Where Events about cluster-scoped objects (ClusterIssuers) go, as client-go puts them."""
_REMEMBERED = 20000
_NAME_ROOM = 230
"""Of an Event name's 253 characters, what the object's name may take."""


@dataclass(frozen=True)
class InvolvedObject:
    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str = API_VERSION


def event_name(involved: InvolvedObject, event: OrderEvent) -> str:
    """``<object>.<time><seq>``; an object name too long to leave room (a CertificateRequest
    may have 253 characters, so may an Event) is cut and told apart by a hash."""
    millis = int(datetime.fromisoformat(event.at).timestamp() * 1000)
    name = involved.name
    if len(name) > _NAME_ROOM:
        name = f"{name[: _NAME_ROOM - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return f"{name}.{millis:x}{event.seq:04x}"


def event_resource(involved: InvolvedObject, event: OrderEvent) -> client.CoreV1Event:
    """The core/v1 Event, as the client's own model (``kubectl describe`` matches the uid)."""
    happened = (timestamp(event.at) or now()).replace(microsecond=0)
    return client.CoreV1Event(
        api_version="v1",
        kind="Event",
        metadata=client.V1ObjectMeta(
            name=event_name(involved, event),
            namespace=involved.namespace or CLUSTER_EVENTS_NAMESPACE,
        ),
        involved_object=client.V1ObjectReference(
            api_version=involved.api_version,
            kind=involved.kind,
            name=involved.name,
            namespace=involved.namespace,
            uid=involved.uid,
        ),
        reason=event.reason,
        message=event.message,
        type=event.type,
        source=client.V1EventSource(component=COMPONENT),
        reporting_component=f"{COMPONENT}.io/bridge",
        reporting_instance=socket.gethostname(),
        first_timestamp=happened,
        last_timestamp=happened,
        count=1,
    )


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
            self._api.core.create_namespaced_event(
                involved.namespace or CLUSTER_EVENTS_NAMESPACE, event_resource(involved, event)
            )
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
