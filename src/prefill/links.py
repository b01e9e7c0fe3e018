"""The public URLs a campaign link points to, built from signed tokens."""

from __future__ import annotations

import functools
from urllib.parse import quote, urlencode, urlsplit

from prefill.tokens import LinkClaims, LinkSigner, TokenPurpose

_CAMPAIGN_PURPOSES = (TokenPurpose.FORM, TokenPurpose.CARD, TokenPurpose.UNSUBSCRIBE)
_CARD = "/card?t="
_VCARD = "/card/vcard?t="
_UNSUBSCRIBE = "/u?t="
"""Paths of a token's pages, before the token (URL-safe as it is: nothing to encode)."""


class LinkBuilder:
    """URLs under `public_url` for a customer reached by a campaign."""

    def __init__(self, signer: LinkSigner, public_url: str) -> None:
        self._signer = signer
        self._base = public_url.rstrip("/")

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the public URL, as browsers send it in an Origin header."""
        parts = urlsplit(self._base)
        return f"{parts.scheme}://{parts.netloc}"

    def campaign_links(self, claims: LinkClaims, form_path: str) -> tuple[str, str, str, str]:
        """The form URL (for the form at `form_path`, see `form_path`), card, vCard and
        unsubscribe URLs of one customer, signed together (`LinkSigner.sign_each`; the card
        and the vCard share a token). Tokens are URL-safe as they are: nothing to encode."""
        tokens = self._signer.sign_each(_CAMPAIGN_PURPOSES, claims)
        card = tokens[TokenPurpose.CARD]
        return (
            f"{form_path}?t={tokens[TokenPurpose.FORM]}",
            f"{self._base}{_CARD}{card}",
            f"{self._base}{_VCARD}{card}",
            f"{self._base}{_UNSUBSCRIBE}{tokens[TokenPurpose.UNSUBSCRIBE]}",
        )

    def form_path(self, form_id: str) -> str:
        """The absolute URL of a form's page, without a token."""
        return f"{self._base}/f/{quote(form_id)}"

    def form_url(self, claims: LinkClaims, form_id: str) -> str:
        token = self._signer.sign(TokenPurpose.FORM, claims)
        return f"{self._base}/f/{quote(form_id)}?{urlencode({'t': token})}"

    def card_token(self, claims: LinkClaims) -> str:
        """The token of the card and vCard links (`card_path`, `vcard_path`)."""
        return self._signer.sign(TokenPurpose.CARD, claims)

    def card_url(self, claims: LinkClaims) -> str:
        return self.card_path(self.card_token(claims), absolute=True)

    def vcard_url(self, claims: LinkClaims) -> str:
        return self.vcard_path(self.card_token(claims), absolute=True)

    def unsubscribe_url(self, claims: LinkClaims) -> str:
        token = self._signer.sign(TokenPurpose.UNSUBSCRIBE, claims)
        return f"{self._base}/u?{urlencode({'t': token})}"

    def card_path(self, card_token: str, absolute: bool = False) -> str:
        """The card page of a card token (URL-safe as it is: nothing to encode)."""
        return f"{self._base if absolute else ''}{_CARD}{card_token}"

    def vcard_path(self, card_token: str, absolute: bool = False) -> str:
        return f"{self._base if absolute else ''}{_VCARD}{card_token}"

    def photo_url(self, contact_id: str) -> str:
        return f"{self._base}/contacts/{_quoted_contact(contact_id)}/photo"


@functools.lru_cache(maxsize=1024)
def _quoted_contact(contact_id: str) -> str:
    """A contact person's id in a path: a few staff ids, each answered in many widget
    responses (`quote` costs about as much as the rest of the URL)."""
    return quote(contact_id)
