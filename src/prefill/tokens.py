"""Link tokens: what a campaign link carries, how it is signed, and why a token is refused.

A token is an itsdangerous `URLSafeTimedSerializer` payload: `[customer_id, campaign_id,
generation]` plus the signing time. The payload is readable by anyone, so it holds ids only,
never an email or a name. Each purpose (form, card, unsubscribe) has its own salt, so a card
link can never be replayed as a form link.
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import hmac
import struct
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING

import msgspec
from itsdangerous import (
    BadData,
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import bytes_to_int, int_to_bytes

from prefill.models import Campaign, CampaignState, Customer, Id

if TYPE_CHECKING:
    from _hashlib import HASH

MAX_TOKEN_LENGTH = 512
"""Longer input is refused before any HMAC work: real tokens are about 100 characters."""


_signing_time: ContextVar[int | None] = ContextVar("prefill_signing_time", default=None)


class _LinkTimestampSigner(TimestampSigner):
    """itsdangerous' signer, able to sign with an earlier time: a link derived from another
    (the card link on a form page) must not live longer than the link it came from."""

    def get_timestamp(self) -> int:
        fixed = _signing_time.get()
        return super().get_timestamp() if fixed is None else fixed


class TokenPurpose(enum.StrEnum):
    FORM = "form"
    CARD = "card"
    UNSUBSCRIBE = "unsubscribe"
    THANKS = "thanks"
    """Who just submitted a form: a short-lived cookie for its thank-you page, never a link."""


SHORT_LIVED_SECONDS = {TokenPurpose.THANKS: 30 * 60}
"""Purposes whose tokens expire sooner than links do."""


class LinkClaims(msgspec.Struct, frozen=True, array_like=True):
    """What a link asserts: this customer, reached by this campaign, at this link generation."""

    customer_id: Id
    campaign_id: Id
    generation: int


_claims_json = msgspec.json.Encoder()
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


_FROM_URL_SAFE = bytes.maketrans(b"-_", b"+/")


def _base64(data: bytes) -> bytes:
    """itsdangerous' base64_encode (URL-safe, unpadded) in C calls alone: four a token."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


def _unbase64(text: bytes) -> bytes:
    """itsdangerous' base64_decode of ASCII in C calls alone; raises binascii.Error (a
    ValueError) where it raises BadData."""
    return binascii.a2b_base64(text.translate(_FROM_URL_SAFE) + b"=" * (-len(text) % 4))


def _hmac_pads(key: bytes) -> tuple[HASH, HASH]:
    """HMAC-SHA256's inner and outer hashes keyed with `key` (RFC 2104), to copy per message:
    hmac.HMAC's copy, update and digest are Python methods around them, about twice the cost
    of the hashing itself for a token's few dozen bytes."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    return hashlib.sha256(padded.translate(_XOR_36)), hashlib.sha256(padded.translate(_XOR_5C))


_XOR_36 = bytes(byte ^ 0x36 for byte in range(256))
_XOR_5C = bytes(byte ^ 0x5C for byte in range(256))


class VerifiedLink(msgspec.Struct, frozen=True):
    claims: LinkClaims
    purpose: TokenPurpose
    signed_at: float
    signed: str
    """The token's "payload.timestamp", which its signature covers (see `sign_as`)."""


class RefusalCause(enum.StrEnum):
    """Why a link did not disclose anything. Recorded in the audit log, never shown."""

    MISSING = "missing"
    MALFORMED = "malformed"
    FORGED = "forged"
    EXPIRED = "expired"
    UNKNOWN_CAMPAIGN = "unknown_campaign"
    REVOKED_CAMPAIGN = "revoked_campaign"
    WRONG_FORM = "wrong_form"
    UNKNOWN_CUSTOMER = "unknown_customer"
    REVOKED_CUSTOMER = "revoked_customer"
    CONSENT_MISSING = "consent_missing"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    UNREADABLE_RECORD = "unreadable_record"


class LinkRefused(Exception):
    """A token that must not disclose anything; `cause` says why (for the audit log only).

    `claims` are set when the signature was valid (e.g. an expired link): they can be trusted
    for attributing the refusal, never for disclosing anything."""

    def __init__(self, cause: RefusalCause, claims: LinkClaims | None = None) -> None:
        super().__init__(cause.value)
        self.cause = cause
        self.claims = claims


class LinkSigner:
    """Signs and verifies link tokens with a list of keys: the last signs, all verify."""

    def __init__(self, secret_keys: list[str], max_age_seconds: int) -> None:
        self._max_age = max_age_seconds
        # One serializer per purpose, built once: the salt separates purposes cryptographically.
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                secret_keys,
                salt=f"prefill.link.{purpose.value}",
                signer=_LinkTimestampSigner,
                signer_kwargs={"digest_method": hashlib.sha256},
            )
            for purpose in TokenPurpose
        }
        self._signers = {purpose: s.make_signer() for purpose, s in self._serializers.items()}
        # Keyed once: `sign_each` copies these instead of deriving the key per token.
        self._macs = {
            purpose: _hmac_pads(signer.derive_key()) for purpose, signer in self._signers.items()
        }
        self._timestamp = (-1, b"")
        """The last signing time, and its base64 (`sign_each`'s, a second at a time)."""
        # Every key's, newest first, as itsdangerous tries them: for `_verify_quickly`.
        self._verifying_macs = {
            purpose: [_hmac_pads(signer.derive_key(key)) for key in reversed(signer.secret_keys)]
            for purpose, signer in self._signers.items()
        }

    def sign(
        self, purpose: TokenPurpose, claims: LinkClaims, signed_at: float | None = None
    ) -> str:
        """A token for `claims`, signed now, or at `signed_at` to inherit another link's age."""
        payload = [claims.customer_id, claims.campaign_id, claims.generation]
        reset = _signing_time.set(None if signed_at is None else int(signed_at))
        try:
            token = self._serializers[purpose].dumps(payload)
        finally:
            _signing_time.reset(reset)
        assert isinstance(token, str)
        return token

    def sign_each(
        self, purposes: Sequence[TokenPurpose], claims: LinkClaims
    ) -> dict[TokenPurpose, str]:
        """Tokens for `claims` signed now for several purposes, each one that `verify` and
        itsdangerous accept as they accept `sign`'s: the payload and the time are serialised
        once, and only the HMAC is made per purpose (bulk minting signs three a customer).
        The payload is the JSON itsdangerous writes for ids (msgspec's bytes are json.dumps'
        for them), never compressed: itsdangerous zlib-compresses the rare payload that
        shrinks, and reads either; its json.dumps and zlib call cost more than the HMACs."""
        timestamp = int(time.time())  # as TimestampSigner.get_timestamp
        if timestamp != self._timestamp[0]:
            self._timestamp = (timestamp, _base64(int_to_bytes(timestamp)))
        signed = b"%s.%s" % (_base64(_claims_json.encode(claims)), self._timestamp[1])
        return {purpose: self._signed(purpose, signed) for purpose in purposes}

    def sign_as(self, purpose: TokenPurpose, link: VerifiedLink) -> str:
        """A verified link signed for another purpose: the same claims and signing time, so
        it cannot outlive the link it came from. Its payload and timestamp are reused as they
        were signed; only the HMAC is new (re-serialising costs several times more)."""
        return self._signed(purpose, link.signed.encode())

    def _signed(self, purpose: TokenPurpose, signed: bytes) -> str:
        """The token of "payload.timestamp" `signed` for `purpose`: HMAC (RFC 2104) inline,
        as itsdangerous' signer makes it with the newest key."""
        inner, outer = self._macs[purpose]
        mac = inner.copy()
        mac.update(signed)
        keyed = outer.copy()
        keyed.update(mac.digest())
        # A digest's base64 ends in one "=" (32 bytes); the rest of the token is URL-safe.
        token = b"%s.%s" % (signed, binascii.b2a_base64(keyed.digest(), newline=False)[:-1])
        return token.translate(_URL_SAFE).decode()

    def _claims_of(self, purpose: TokenPurpose, payload: object) -> LinkClaims | None:
        """The claims in the still-encoded payload of an expired token, if it decodes."""
        if not isinstance(payload, bytes):
            return None
        try:
            return _as_claims(self._serializers[purpose].load_payload(payload))
        except BadData:
            return None

    def verify(self, purpose: TokenPurpose, token: str | None) -> VerifiedLink:
        """The link's claims if the signature is valid and younger than the global maximum age.

        Raises `LinkRefused`; campaign lifetime, revocation and consent are checked later, by
        the caller, because they need stored state.
        """
        if not token:
            raise LinkRefused(RefusalCause.MISSING)
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise LinkRefused(RefusalCause.MALFORMED)
        parts = _canonical_parts(token)
        if parts is None:
            raise LinkRefused(RefusalCause.FORGED)
        if (quick := self._verify_quickly(purpose, token, parts)) is not None:
            return quick
        try:
            payload, signed_at = self._serializers[purpose].loads(
                token,
                max_age=min(self._max_age, SHORT_LIVED_SECONDS.get(purpose, self._max_age)),
                return_timestamp=True,
            )
        except SignatureExpired as exc:
            # The signature itself was valid, so its claims are authentic: keep them.
            raise LinkRefused(RefusalCause.EXPIRED, self._claims_of(purpose, exc.payload)) from exc
        except BadSignature as exc:
            # BadSignature also covers a token signed for another purpose (another salt).
            raise LinkRefused(RefusalCause.FORGED) from exc
        except BadData as exc:
            raise LinkRefused(RefusalCause.MALFORMED) from exc
        claims = _as_claims(payload)
        if claims is None:
            # Validly signed but not our shape: only possible with a leaked key or a format change.
            raise LinkRefused(RefusalCause.MALFORMED)
        return VerifiedLink(
            claims=claims,
            purpose=purpose,
            signed_at=signed_at.timestamp(),
            signed=token.rsplit(".", 1)[0],
        )

    def _verify_quickly(
        self, purpose: TokenPurpose, token: str, parts: list[bytes]
    ) -> VerifiedLink | None:
        """What `verify` answers through itsdangerous, without its per-call signer and
        serializer work (most of a verification's cost), for a token of three parts with an
        uncompressed payload: the link, when it is well signed, in time and of our shape; FORGED
        (LinkRefused), when no key signed it, whatever it holds (itsdangerous checks the
        signature before anything else). `parts`: the token's parts, decoded. None for any
        other token: itsdangerous then says what is wrong with it."""
        if len(parts) != 3 or not parts[0]:  # a compressed payload starts with "."
            return None
        payload, timestamp, expected = parts
        signed = token.rpartition(".")[0]
        message = signed.encode()
        for inner, outer in self._verifying_macs[purpose]:
            mac = inner.copy()
            mac.update(message)
            keyed = outer.copy()
            keyed.update(mac.digest())
            if hmac.compare_digest(keyed.digest(), expected):
                break
        else:
            raise LinkRefused(RefusalCause.FORGED)
        try:
            signed_at = bytes_to_int(timestamp)
            claims = msgspec.json.decode(payload, type=LinkClaims)
        except (ValueError, struct.error, msgspec.DecodeError):
            return None
        age = int(time.time()) - signed_at  # as TimestampSigner.unsign
        if not 0 <= age <= min(self._max_age, SHORT_LIVED_SECONDS.get(purpose, self._max_age)):
            return None
        return VerifiedLink(claims, purpose, float(signed_at), signed)


def _as_claims(payload: object) -> LinkClaims | None:
    try:
        return msgspec.convert(payload, LinkClaims)
    except msgspec.ValidationError:
        return None


def _canonical_parts(token: str) -> list[bytes] | None:
    """Each part of an ASCII token, decoded, if every part is in canonical base64. The last
    character of a base64 text carries unused bits, so without this check some one-character
    edits would still verify. Decoded once here, for the checks after it too."""
    decoded = []
    try:
        for part in token.encode().split(b"."):
            data = _unbase64(part)
            if _base64(data) != part:
                return None
            decoded.append(data)
    except ValueError:
        return None
    return decoded


def link_age_seconds(link: VerifiedLink, now: float | None = None) -> float:
    return (time.time() if now is None else now) - link.signed_at


def check_claims(
    link: VerifiedLink,
    *,
    campaign: Campaign | None,
    customer: Customer | None,
    form_id: str | None,
    now: float | None = None,
) -> None:
    """Refuse a validly signed link that stored state has since revoked or outlived.

    `form_id` is the form the link is used for; None where any form of the campaign will do.
    """
    if campaign is None:
        raise LinkRefused(RefusalCause.UNKNOWN_CAMPAIGN)
    if campaign.state is not CampaignState.ACTIVE:
        raise LinkRefused(RefusalCause.REVOKED_CAMPAIGN)
    if link_age_seconds(link, now) > campaign.link_lifetime_seconds:
        raise LinkRefused(RefusalCause.EXPIRED)
    if form_id is not None and campaign.form_id != form_id:
        raise LinkRefused(RefusalCause.WRONG_FORM)
    if customer is None:
        raise LinkRefused(RefusalCause.UNKNOWN_CUSTOMER)
    if customer.generation != link.claims.generation:
        raise LinkRefused(RefusalCause.REVOKED_CUSTOMER)
