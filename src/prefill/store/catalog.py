"""The catalog: forms, campaigns and contact persons, shared by every link, and its version.

Every catalog change bumps the version, so each instance knows when to reload its copy. Every
link reads the version, so it is copied into each bucket, where a link reads it together with
its customer: one slot of a cluster would otherwise take every request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import cast

import msgspec
import redis.exceptions
from redis.typing import EncodableT, FieldT

from prefill.models import Campaign, CampaignState, Catalog, ContactPerson, Form
from prefill.store.base import StoreBase
from prefill.store.errors import StoreUnavailable, unavailable_on_error
from prefill.store.keys import (
    BUCKETS,
    CATALOG_CAMPAIGNS,
    CATALOG_CONTACTS,
    CATALOG_FORMS,
    CATALOG_VERSION,
    catalog_version_copy_key,
    photo_key,
)
from prefill.store.scripts import ScriptCall

_encoder = msgspec.json.Encoder()
_form_decoder = msgspec.json.Decoder(Form)
_campaign_decoder = msgspec.json.Decoder(Campaign)
_contact_decoder = msgspec.json.Decoder(ContactPerson)


def parse_version(raw: object) -> int:
    """The catalog version; anything unreadable there makes every check impossible."""
    if raw is None:
        return 0
    if isinstance(raw, bytes | str | int):
        try:  # not contextlib.suppress: an object a call, on every link's read
            return int(raw)
        except ValueError:
            pass
    raise StoreUnavailable("catalog version unreadable")


class CatalogStore(StoreBase):
    """The catalog's records in one slot, and its version copied into every bucket."""

    async def catalog_version(self) -> int:
        """The version, as one bucket's copy has it (any will do: a change is answered only
        once every copy has it)."""
        copy = catalog_version_copy_key(secrets.randbelow(BUCKETS))
        async with unavailable_on_error():
            (version,) = await self._reads.execute([("GET", copy)])
        return parse_version(version)

    async def _spread_version(self, version: int) -> None:
        """Raise every bucket's copy of the version to `version` (never lower: two changes
        may spread theirs in either order). Then the change is in force on every link."""
        calls = [
            ScriptCall(self._scripts.raise_version, [catalog_version_copy_key(bucket)], [version])
            for bucket in range(BUCKETS)
        ]
        await self._run_scripts(calls)

    async def load_catalog(self) -> Catalog:
        # A transaction's pipeline is always reset (the block's exit): a cluster client's
        # otherwise keeps its connection and cannot close.
        async with unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            pipe.get(CATALOG_VERSION)
            pipe.hgetall(CATALOG_FORMS)
            pipe.hgetall(CATALOG_CAMPAIGNS)
            pipe.hgetall(CATALOG_CONTACTS)
            version, forms, campaigns, contacts = await pipe.execute()
        try:
            return Catalog(
                version=parse_version(version),
                forms={k.decode(): _form_decoder.decode(v) for k, v in forms.items()},
                campaigns={k.decode(): _campaign_decoder.decode(v) for k, v in campaigns.items()},
                contacts={k.decode(): _contact_decoder.decode(v) for k, v in contacts.items()},
            )
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            # Forms and campaigns are everyone's: without them nothing can be checked.
            raise StoreUnavailable("catalog does not decode") from exc

    async def save_catalog(
        self,
        *,
        forms: Iterable[Form] = (),
        campaigns: Iterable[Campaign] = (),
        contacts: Iterable[ContactPerson] = (),
        photos: Mapping[str, bytes] | None = None,
    ) -> None:
        """Upsert catalog records atomically and bump the version so every instance reloads."""
        async with unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            encoded: list[tuple[str, dict[FieldT, EncodableT]]] = [
                (CATALOG_FORMS, {f.id: _encoder.encode(f) for f in forms}),
                (CATALOG_CAMPAIGNS, {c.id: _encoder.encode(c) for c in campaigns}),
                (CATALOG_CONTACTS, {p.id: _encoder.encode(p) for p in contacts}),
            ]
            for key, mapping in encoded:
                if mapping:
                    pipe.hset(key, mapping=mapping)
            for contact_id, photo in (photos or {}).items():
                pipe.set(photo_key(contact_id), photo)
            pipe.incr(CATALOG_VERSION)
            *_, version = await pipe.execute()
        await self._spread_version(version)

    async def upsert_campaigns(
        self,
        campaigns: list[Campaign],
        reconcile: Callable[[list[Campaign], dict[str, Campaign]], list[Campaign]],
    ) -> None:
        """Write `reconcile(campaigns, stored)` under WATCH: a revocation that lands meanwhile
        is read again and reconciled, never overwritten."""
        async with unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(CATALOG_CAMPAIGNS)
                    raw = cast("dict[bytes, bytes]", await pipe.hgetall(CATALOG_CAMPAIGNS))
                    stored = {k.decode(): _campaign_decoder.decode(v) for k, v in raw.items()}
                    final = reconcile(campaigns, stored)
                    if not final:
                        return  # Nothing to write: leave the catalog version alone.
                    pipe.multi()  # type: ignore[no-untyped-call]
                    encoded: dict[FieldT, EncodableT] = {c.id: _encoder.encode(c) for c in final}
                    pipe.hset(CATALOG_CAMPAIGNS, mapping=encoded)
                    pipe.incr(CATALOG_VERSION)
                    *_, version = await pipe.execute()
                    break
                except redis.exceptions.WatchError:
                    continue
        await self._spread_version(version)

    async def set_campaign_state(self, campaign_id: str, state: CampaignState) -> bool:
        """Revoke (or reactivate) a campaign; False if there is no such campaign. Answered once
        a replica of every primary has the change and its version's copies (durability.py)."""
        found = False

        def change_state(_: list[Campaign], stored: dict[str, Campaign]) -> list[Campaign]:
            nonlocal found
            campaign = stored.get(campaign_id)
            found = campaign is not None
            return [msgspec.structs.replace(campaign, state=state)] if campaign else []

        await self.upsert_campaigns([], change_state)
        if found:
            copies = [catalog_version_copy_key(bucket) for bucket in range(BUCKETS)]
            await self._confirm_replicated([CATALOG_CAMPAIGNS, *copies])
        return found

    async def contact_photo(self, contact_id: str) -> bytes | None:
        """The photo, read in the round trip shared by concurrent requests (the vCard's)."""
        async with unavailable_on_error():
            (photo,) = await self._reads.execute([("GET", photo_key(contact_id))])
            if isinstance(photo, redis.exceptions.RedisError):
                raise photo
        return photo if isinstance(photo, bytes) else None

    async def delete_catalog_entry(self, kind: str, entry_id: str) -> bool:
        """Remove a form, campaign or contact person (`kind`); False if there was none."""
        key = {
            "forms": CATALOG_FORMS,
            "campaigns": CATALOG_CAMPAIGNS,
            "contacts": CATALOG_CONTACTS,
        }[kind]
        async with unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(key, entry_id)
            if kind == "contacts":
                pipe.delete(photo_key(entry_id))
            pipe.incr(CATALOG_VERSION)
            removed, *_, version = await pipe.execute()
        await self._spread_version(version)
        return bool(removed)
