"""Activities as methods of small classes: what a Temporal worker is given for an instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def activity_methods(*instances: object) -> list[Callable[..., Any]]:
    """Every ``@activity.defn`` method of each instance, bound."""
    found = []
    for instance in instances:
        for name in dir(type(instance)):
            member = getattr(type(instance), name)
            if hasattr(member, "__temporal_activity_definition"):
                found.append(getattr(instance, name))
    return found
