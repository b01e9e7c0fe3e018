"""Recording a consent change, whoever asks: the admin API, the CLI, a form, an unsubscribe link.

One path for all of them: the event is appended atomically (idempotent per request id, nothing
appended when it repeats the current state), then audited and published on the change feed.
"""

from __future__ import annotations

import hashlib

import msgspec

from prefill.models import AuditEntry, AuditKind, ChangeEvent, ChangeKind, ConsentEvent
from prefill.store import ConsentOutcome, Repository


class UnknownCustomer(LookupError):
    """No customer with that id (never created, or erased)."""


def request_fingerprint(event: ConsentEvent) -> str:
    """What a retry must repeat: the change asked for. Not the time, and not the evidence: a
    retry may come through another proxy, with another user agent."""
    asked = [event.purpose, event.action.value, event.notice_version, event.source.value]
    return hashlib.sha256(msgspec.json.encode(asked)).hexdigest()[:32]


class ConsentRecorder:
    def __init__(self, repository: Repository) -> None:
        self._repo = repository

    async def record(
        self, customer_id: str, event: ConsentEvent, request_id: str = ""
    ) -> ConsentOutcome:
        """Record `event`; raises UnknownCustomer, RequestConflict or StoreUnavailable. The
        event is durable when this returns; the audit entry and the feed entry follow it."""
        outcome = await self._repo.record_consent(
            customer_id, event, request_id, request_fingerprint(event)
        )
        if outcome.status == "unknown_customer":
            raise UnknownCustomer(customer_id)
        # A retry of a request whose first attempt stored the event but failed before its
        # audit and feed entries (Redis went away in between) writes them now.
        unpublished_retry = outcome.first_status == "recorded" and not outcome.published
        if outcome.status == "recorded" or unpublished_retry:
            assert outcome.event is not None
            await self._publish(customer_id, outcome.event)
            if request_id:
                await self._repo.mark_published(customer_id, request_id)
        return outcome

    async def _publish(self, customer_id: str, event: ConsentEvent) -> None:
        await self._repo.record_audit(
            AuditEntry(
                kind=AuditKind.CONSENT,
                at=event.at,
                customer_id=customer_id,
                action=f"consent.{event.action.value}",
                actor=event.actor or event.source.value,
                target=f"purpose:{event.purpose}",
            )
        )
        await self._repo.publish_change(
            ChangeEvent(
                kind=ChangeKind.CONSENT, customer_id=customer_id, at=event.at, consent=event
            )
        )
