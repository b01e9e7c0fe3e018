from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable

import msgspec
import pytest
from itsdangerous import URLSafeTimedSerializer

from prefill.models import Campaign, CampaignState, Customer
from prefill.tokens import (
    MAX_TOKEN_LENGTH,
    LinkClaims,
    LinkRefused,
    LinkSigner,
    RefusalCause,
    TokenPurpose,
    check_claims,
)

OLD_KEY = "old-key-" + "o" * 40
NEW_KEY = "new-key-" + "n" * 40
CLAIMS = LinkClaims("cust-1", "camp-1", 3)
DAY = 86_400


def signer(*keys: str, max_age: int = 30 * DAY) -> LinkSigner:
    return LinkSigner(list(keys or [NEW_KEY]), max_age)


def refusal(call: Callable[[], object]) -> RefusalCause:
    with pytest.raises(LinkRefused) as info:
        call()
    return info.value.cause


def test_round_trip_returns_the_claims_and_signing_time() -> None:
    token = signer().sign(TokenPurpose.FORM, CLAIMS)
    link = signer().verify(TokenPurpose.FORM, token)
    assert link.claims == CLAIMS
    assert abs(link.signed_at - time.time()) < 5


def test_payload_holds_ids_only() -> None:
    token = signer().sign(TokenPurpose.FORM, CLAIMS)
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert decoded == '["cust-1","camp-1",3]'


def test_a_card_token_does_not_open_a_form() -> None:
    card_token = signer().sign(TokenPurpose.CARD, CLAIMS)
    assert refusal(lambda: signer().verify(TokenPurpose.FORM, card_token)) is RefusalCause.FORGED


@pytest.mark.parametrize("position", [0, 10, -1, -10])
def test_any_changed_character_is_refused(position: int) -> None:
    token = signer().sign(TokenPurpose.FORM, CLAIMS)
    changed = "A" if token[position] != "A" else "B"
    tampered = (
        token[:position] + changed + token[position + 1 :]
        if position != -1
        else token[:-1] + changed
    )
    assert refusal(lambda: signer().verify(TokenPurpose.FORM, tampered)) in {
        RefusalCause.FORGED,
        RefusalCause.MALFORMED,
    }


def test_a_token_signed_with_another_key_is_forged() -> None:
    token = signer("x" * 48).sign(TokenPurpose.FORM, CLAIMS)
    assert refusal(lambda: signer().verify(TokenPurpose.FORM, token)) is RefusalCause.FORGED


def test_rotation_newest_key_signs_and_old_keys_still_verify() -> None:
    old_token = signer(OLD_KEY).sign(TokenPurpose.FORM, CLAIMS)
    rotated = signer(OLD_KEY, NEW_KEY)
    assert rotated.verify(TokenPurpose.FORM, old_token).claims == CLAIMS
    new_token = rotated.sign(TokenPurpose.FORM, CLAIMS)
    assert signer(NEW_KEY).verify(TokenPurpose.FORM, new_token).claims == CLAIMS
    # Retiring the old key kills its links.
    assert (
        refusal(lambda: signer(NEW_KEY).verify(TokenPurpose.FORM, old_token)) is RefusalCause.FORGED
    )


def test_global_max_age_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    short = signer(max_age=DAY)
    token = short.sign(TokenPurpose.FORM, CLAIMS)
    later = time.time() + DAY + 10
    monkeypatch.setattr(time, "time", lambda: later)
    assert refusal(lambda: short.verify(TokenPurpose.FORM, token)) is RefusalCause.EXPIRED
    with pytest.raises(LinkRefused) as info:
        short.verify(TokenPurpose.FORM, token)
    assert info.value.claims == CLAIMS  # validly signed: attributable, though refused


@pytest.mark.parametrize(
    ("token", "cause"),
    [
        (None, RefusalCause.MISSING),
        ("", RefusalCause.MISSING),
        ("x" * (MAX_TOKEN_LENGTH + 1), RefusalCause.MALFORMED),
        ("ä.b.c", RefusalCause.MALFORMED),
        ("no-dots-at-all", RefusalCause.FORGED),
    ],
)
def test_garbage_is_refused(token: str | None, cause: RefusalCause) -> None:
    assert refusal(lambda: signer().verify(TokenPurpose.FORM, token)) is cause


def test_a_signed_payload_of_the_wrong_shape_is_malformed() -> None:
    import hashlib

    from itsdangerous import URLSafeTimedSerializer

    odd = URLSafeTimedSerializer(
        [NEW_KEY], salt="prefill.link.form", signer_kwargs={"digest_method": hashlib.sha256}
    )
    token = odd.dumps({"email": "x@example.com"})
    assert isinstance(token, str)
    assert refusal(lambda: signer().verify(TokenPurpose.FORM, token)) is RefusalCause.MALFORMED


CAMPAIGN = Campaign(id="camp-1", form_id="form-1", link_lifetime_days=10)
CUSTOMER = Customer(id="cust-1", email="a@b.example", generation=3)


@pytest.mark.parametrize(
    ("campaign", "customer", "form_id", "age_days", "cause"),
    [
        (None, CUSTOMER, "form-1", 0, RefusalCause.UNKNOWN_CAMPAIGN),
        (
            Campaign(id="camp-1", form_id="form-1", state=CampaignState.REVOKED),
            CUSTOMER,
            "form-1",
            0,
            RefusalCause.REVOKED_CAMPAIGN,
        ),
        (CAMPAIGN, CUSTOMER, "form-1", 11, RefusalCause.EXPIRED),
        (CAMPAIGN, CUSTOMER, "other-form", 0, RefusalCause.WRONG_FORM),
        (CAMPAIGN, None, "form-1", 0, RefusalCause.UNKNOWN_CUSTOMER),
        (
            CAMPAIGN,
            Customer(id="cust-1", email="a@b.example", generation=4),
            "form-1",
            0,
            RefusalCause.REVOKED_CUSTOMER,
        ),
    ],
)
def test_check_claims_refuses_what_stored_state_revoked(
    campaign: Campaign | None,
    customer: Customer | None,
    form_id: str,
    age_days: int,
    cause: RefusalCause,
) -> None:
    link = signer().verify(TokenPurpose.FORM, signer().sign(TokenPurpose.FORM, CLAIMS))
    now = link.signed_at + age_days * DAY
    assert (
        refusal(
            lambda: check_claims(
                link, campaign=campaign, customer=customer, form_id=form_id, now=now
            )
        )
        is cause
    )


def test_check_claims_admits_a_current_link() -> None:
    link = signer().verify(TokenPurpose.FORM, signer().sign(TokenPurpose.FORM, CLAIMS))
    check_claims(
        link, campaign=CAMPAIGN, customer=CUSTOMER, form_id="form-1", now=link.signed_at + 9 * DAY
    )
    check_claims(link, campaign=CAMPAIGN, customer=CUSTOMER, form_id=None)


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize("part", [0, 1, 2])
def test_every_one_character_edit_of_a_part_end_is_refused(part: int) -> None:
    """Base64's last character has spare bits; an edit there must not slip through."""
    token = signer().sign(TokenPurpose.FORM, CLAIMS)
    pieces = token.split(".")
    for char in ALPHABET:
        if char == pieces[part][-1]:
            continue
        edited = pieces.copy()
        edited[part] = edited[part][:-1] + char
        variant = ".".join(edited)
        with pytest.raises(LinkRefused):
            signer().verify(TokenPurpose.FORM, variant)


def test_a_derived_link_can_inherit_the_signing_time() -> None:
    past = int(time.time()) - 10 * DAY
    token = signer().sign(TokenPurpose.CARD, CLAIMS, signed_at=past)
    assert signer().verify(TokenPurpose.CARD, token).signed_at == past
    # The override does not leak into the next token.
    fresh = signer().verify(TokenPurpose.CARD, signer().sign(TokenPurpose.CARD, CLAIMS))
    assert abs(fresh.signed_at - time.time()) < 5


def test_a_card_link_signed_from_a_verified_form_link_is_the_one_signing_makes() -> None:
    """Reusing the form token's signed payload and time gives, byte for byte, the token that
    serialising the claims again would give, with its signing time."""
    keys = signer(OLD_KEY, NEW_KEY)
    past = int(time.time()) - 10 * DAY
    form = keys.verify(TokenPurpose.FORM, keys.sign(TokenPurpose.FORM, CLAIMS, signed_at=past))
    card = keys.sign_as(TokenPurpose.CARD, form)
    assert card == keys.sign(TokenPurpose.CARD, CLAIMS, signed_at=past)
    assert keys.verify(TokenPurpose.CARD, card).claims == CLAIMS
    assert refusal(lambda: keys.verify(TokenPurpose.FORM, card)) is RefusalCause.FORGED


def test_tokens_signed_together_are_those_itsdangerous_makes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.75)
    keys = signer(OLD_KEY, NEW_KEY)
    tokens = keys.sign_each(PURPOSES, CLAIMS)
    for purpose in PURPOSES:
        assert tokens[purpose] == itsdangerous_serializer(purpose).dumps(
            [CLAIMS.customer_id, CLAIMS.campaign_id, CLAIMS.generation]
        )
        assert keys.verify(purpose, tokens[purpose]).claims == CLAIMS


def test_a_payload_that_would_compress_is_signed_uncompressed_and_still_verifies() -> None:
    claims = LinkClaims("a" * 64, "camp-" + "b" * 59, 12_345)
    keys = signer(OLD_KEY, NEW_KEY)
    tokens = keys.sign_each(PURPOSES, claims)
    for purpose in PURPOSES:
        assert itsdangerous_serializer(purpose).dumps(["a" * 64, "x", 1]).startswith(".")
        assert not tokens[purpose].startswith(".")
        assert keys.verify(purpose, tokens[purpose]).claims == claims
        assert itsdangerous_serializer(purpose).loads(tokens[purpose]) == list(
            msgspec.structs.astuple(claims)
        )
    signed = tokens[TokenPurpose.FORM]
    assert refusal(lambda: keys.verify(TokenPurpose.CARD, signed)) is RefusalCause.FORGED


PURPOSES = [TokenPurpose.FORM, TokenPurpose.CARD, TokenPurpose.UNSUBSCRIBE]


def itsdangerous_serializer(purpose: TokenPurpose) -> URLSafeTimedSerializer:
    """itsdangerous' own serializer with the keys and salt of `purpose`."""
    return URLSafeTimedSerializer(
        [OLD_KEY, NEW_KEY],
        salt=f"prefill.link.{purpose.value}",
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def outcome(link_signer: LinkSigner, purpose: TokenPurpose, token: str) -> object:
    try:
        return link_signer.verify(purpose, token)
    except LinkRefused as refused:
        return refused.cause, refused.claims


def test_the_quick_verification_answers_as_itsdangerous(monkeypatch: pytest.MonkeyPatch) -> None:
    """`verify` checks a good token itself (`_verify_quickly`) and leaves every other to
    itsdangerous: for any token, the answer is the one itsdangerous alone gives."""
    rotated, slow = signer(OLD_KEY, NEW_KEY), signer(OLD_KEY, NEW_KEY)
    monkeypatch.setattr(slow, "_verify_quickly", lambda *_: None)
    odd = URLSafeTimedSerializer(
        [NEW_KEY], salt="prefill.link.form", signer_kwargs={"digest_method": hashlib.sha256}
    )
    now = time.time()
    tokens = [
        rotated.sign(TokenPurpose.FORM, CLAIMS),
        signer(OLD_KEY).sign(TokenPurpose.FORM, CLAIMS),  # an old key's
        rotated.sign(TokenPurpose.FORM, CLAIMS, signed_at=now - 31 * DAY),  # expired
        rotated.sign(TokenPurpose.FORM, CLAIMS, signed_at=now + DAY),  # from the future
        rotated.sign(TokenPurpose.CARD, CLAIMS),  # another purpose
        rotated.sign(TokenPurpose.THANKS, CLAIMS, signed_at=now - 3600),  # short-lived, expired
        signer("another-key-" + "a" * 40).sign(TokenPurpose.FORM, CLAIMS),
        odd.dumps({"email": "x@example.com"}),  # well signed, not our shape
        odd.dumps(["cust-1", "camp-1", 3.0]),
        odd.dumps(["cust-1", "camp-1", 3, "extra"]),
        odd.dumps("x" * 200),  # compressed by itsdangerous
    ]
    good = tokens[0]
    for cut in range(1, len(good)):
        tokens += [good[:cut], good[cut:], good[:cut] + "." + good[cut:]]
    for i, char in enumerate(good):
        swapped = "A" if char != "A" else "B"
        tokens.append(good[:i] + swapped + good[i + 1 :])
    for purpose in TokenPurpose:
        for token in tokens:
            assert isinstance(token, str)
            assert outcome(rotated, purpose, token) == outcome(slow, purpose, token), token
    assert outcome(rotated, TokenPurpose.FORM, good) == rotated.verify(TokenPurpose.FORM, good)
