"""The node's address book: participant key -> Endpoint (direct, relay or onion), bounded.

WHY bounded: entries arrive from peers (the endpoint field of every signed
JOIN, the creator endpoint of every pushed signing request, advertisements),
and keys cost an attacker nothing, so an unbounded dict grows for as long as
the node runs. The least recently written entries go first; losing one only
means that peer's next signed JOIN (or a request's hint) tells us again.

Only endpoints their owner signed belong here. A request's endpoint *hints*
are its creator's claims about other people's keys: they stay in that
request's ``SessionSpec`` and are consulted as a fallback for its sessions
alone, so one request cannot redirect the traffic of every later session.
"""
from __future__ import annotations

from collections import OrderedDict

from ..foundation.endpoint import Endpoint


class EndpointBook(OrderedDict):
    """An ``OrderedDict`` that forgets its oldest entries beyond ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        super().__init__()
        self.max_entries = max_entries

    def __setitem__(self, key: bytes, value: "Endpoint | tuple[str, int]") -> None:
        super().__setitem__(key, Endpoint.of(value))
        self.move_to_end(key)
        while len(self) > self.max_entries:
            self.popitem(last=False)

    def setdefault(self, key: bytes, default: Endpoint) -> Endpoint:  # type: ignore[override]
        if key in self:
            return self[key]
        self[key] = default
        return default

    def update(self, *args, **kwargs) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value
