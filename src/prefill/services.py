"""Use cases: what happens when a link is opened, a card is fetched, or "Not you?" is pressed.

Web handlers only call these. Each resolution is one HMAC check and one Redis round trip (plus a
catalog reload in the rare case another instance changed a form or campaign), then an audit write
that must succeed before anything personal leaves the service; the campaign's funnel counters
travel in the same round trip as that write.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping

import msgspec

from prefill import funnel, metrics, ratelimit
from prefill.catalog import CatalogCache
from prefill.consent import (
    ConsentShown,
    consent_refusal,
    consent_states,
    disclosable_values,
    greeting_name,
)
from prefill.consent_writes import ConsentRecorder, UnknownCustomer
from prefill.contacts import contact_for
from prefill.events import ics_filename, to_icalendar
from prefill.funnel import FunnelUpdate
from prefill.i18n import negotiate_locale, pick
from prefill.models import (
    AuditEntry,
    AuditKind,
    Campaign,
    ChangeEvent,
    ChangeKind,
    Channel,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ContactPerson,
    Customer,
    Form,
    Locale,
)
from prefill.phones import home_country
from prefill.purposes import EMAIL_MARKETING
from prefill.ratelimit import LimitKind, RateLimited, RateLimits
from prefill.scanners import Automation, link_automation
from prefill.store import CorruptRecord, RateCount, Repository, StoreUnavailable
from prefill.submissions import Rejected, changed_fields, new_lead, updated_record, validate
from prefill.tokens import (
    LinkClaims,
    LinkRefused,
    LinkSigner,
    RefusalCause,
    TokenPurpose,
    VerifiedLink,
    check_claims,
    link_age_seconds,
)
from prefill.vcard import to_vcard


class UnknownForm(LookupError):
    """No form with that id: a 404 about the address, which says nothing about any customer."""


class ConsentNotAsked(LookupError):
    """The form asks for no consent to that purpose: nothing to withdraw through it."""


class Visitor(msgspec.Struct, frozen=True):
    """What the web layer tells a use case about the request (nothing personal)."""

    accept_language: str | None = None
    automation: Automation | None = None
    """What the request itself says about a scanner: HEAD, or an automated user agent."""
    address: str = ""
    """The client's address, for the rate limit on refused links (never stored as such)."""


class FormView(msgspec.Struct, frozen=True):
    """A form page or widget answer; `values` is empty and `contact` None unless disclosed."""

    form: Form
    locale: Locale
    values: dict[str, str] = msgspec.field(default_factory=dict)
    contact: ContactPerson | None = None
    greeting_name: str = ""
    form_token: str | None = None
    card_token: str | None = None
    consents: dict[str, ConsentShown] = msgspec.field(default_factory=dict)
    """The state of the form's consents, on the customer's own page only (never the widget)."""
    home_country: str | None = None
    """The customer's country, whose phone numbers are shown in its national format."""

    @property
    def personal(self) -> bool:
        return self.form_token is not None


class CardView(msgspec.Struct, frozen=True):
    locale: Locale
    contact: ContactPerson | None = None
    card_token: str | None = None
    home_country: str | None = None


class VCardFile(msgspec.Struct, frozen=True):
    filename: str
    text: str


class EventFile(msgspec.Struct, frozen=True):
    filename: str
    text: bytes


class SubmitOutcome(msgspec.Struct, frozen=True):
    """A submission: `rejected` holds the messages and what was typed, else it was stored."""

    form: Form
    locale: Locale
    rejected: Rejected | None = None
    customer_id: str | None = None
    thanks_token: str | None = None
    """For a submit through a still good link: who submitted, for the thank-you page only."""


class ThanksView(msgspec.Struct, frozen=True):
    """The thank-you page; `contact` only for the person who just submitted through a link."""

    form: Form
    locale: Locale
    contact: ContactPerson | None = None
    card_token: str | None = None
    home_country: str | None = None


class _Admitted(msgspec.Struct, frozen=True):
    """A link that passed every check: its customer may be shown what the form allows."""

    link: VerifiedLink
    customer: Customer
    campaign: Campaign
    form: Form | None
    contact: ContactPerson | None
    consents: dict[str, ConsentEvent] = msgspec.field(default_factory=dict)
    """The customer's current consent per purpose, from the same read as the checks."""
    automation: Automation | None = None
    """Why the request looks automated, if it does (the audit's scanner flag)."""
    hit: FunnelUpdate | None = None
    """What the request adds to the campaign's funnel, written with the disclosure's audit."""


class PrefillService:
    def __init__(
        self,
        repository: Repository,
        signer: LinkSigner,
        catalog: CatalogCache,
        organization: str = "",
        scanner_window_seconds: float = 10.0,
        limits: RateLimits = ratelimit.DISABLED,
    ) -> None:
        self._repo = repository
        self._limits = limits
        self._signer = signer
        self._catalog = catalog
        self._organization = organization
        self._consents = ConsentRecorder(repository)
        self._scanner_window = scanner_window_seconds

    @property
    def organization(self) -> str:
        return self._organization

    # -- submitting the hosted form -----------------------------------------------------------

    async def submit(
        self,
        form_id: str,
        posted: Mapping[str, str],
        locale: Locale,
        ip_prefix: str,
        user_agent: str,
    ) -> SubmitOutcome:
        """Validate and store a submission: the link's customer is updated (whatever their
        consent to prefill: they typed it themselves), anyone else becomes a new lead. The
        ticked consent boxes become consent events with the notice version shown. Everything
        is durable when this returns, and published on the change feed."""
        form = await self.require_form(form_id)
        checked = validate(form, posted)
        if isinstance(checked, Rejected):
            return SubmitOutcome(form=form, locale=locale, rejected=checked)
        link, before, consents = await self._submitting_customer(posted.get("t"), form_id)
        base = before or new_lead(form, checked, posted, locale)
        if isinstance(base, Rejected):
            return SubmitOutcome(form=form, locale=locale, rejected=base)
        after = updated_record(form, base, checked.values)
        # The link's customer only if still there: an erasure meanwhile must not be undone.
        saved = await self._repo.save_customers([after], lambda _: {}, only_existing=bool(before))
        if not saved.records:
            return SubmitOutcome(form=form, locale=locale)  # Erased meanwhile: nothing kept.
        now = time.time()
        for purpose, version in checked.consents.items():
            event = ConsentEvent(
                purpose=purpose,
                action=ConsentAction.GRANTED,
                at=now,
                source=ConsentSource.FORM,
                notice_version=version,
                actor="the customer, by form link" if before else "the customer, as a new lead",
                ip_prefix=ip_prefix,
                user_agent=user_agent[:200],
            )
            await self._consents.record(after.id, event)
        changed = changed_fields(form, before, after) if before else sorted(checked.values)
        campaign_id = link.claims.campaign_id if link else ""
        hit = None
        if link is not None and before is not None:
            shown = (
                disclosable_values(form, before)
                if consent_refusal(consents, form.prefill_purpose) is None
                else {}
            )
            corrected = [name for name in changed if name in shown]
            hit = funnel.submission(campaign_id, self._person(link.claims, True), corrected)
        await self._repo.record_audit(
            AuditEntry(
                kind=AuditKind.SUBMISSION,
                at=now,
                channel=Channel.PAGE,
                customer_id=after.id,
                campaign_id=campaign_id,
                form_id=form_id,
                fields=changed,
            ),
            funnel=hit,
        )
        await self._repo.publish_change(
            ChangeEvent(
                kind=ChangeKind.SUBMISSION,
                customer_id=after.id,
                at=now,
                form_id=form_id,
                campaign_id=campaign_id,
                values=checked.values,
                changed=changed,
            )
        )
        thanks = self._signer.sign(TokenPurpose.THANKS, link.claims) if link and before else None
        return SubmitOutcome(form=form, locale=locale, customer_id=after.id, thanks_token=thanks)

    async def _submitting_customer(
        self, token: str | None, form_id: str
    ) -> tuple[VerifiedLink | None, Customer | None, dict[str, ConsentEvent]]:
        """The customer a submission's link names and their consent, if the link is still
        good; else nobody."""
        try:
            link = self._signer.verify(TokenPurpose.FORM, token)
            state = await self._repo.read_link_state(link.claims.customer_id)
            catalog = await self._catalog.current(state.catalog_version)
            campaign = catalog.campaigns.get(link.claims.campaign_id)
            check_claims(link, campaign=campaign, customer=state.customer, form_id=form_id)
        except (LinkRefused, CorruptRecord):
            return None, None, {}
        return link, state.customer, state.consents

    async def thanks_view(self, form_id: str, token: str | None, locale: Locale) -> ThanksView:
        """The thank-you page, with the contact person again for the person whose submit
        signed `token` (a short-lived cookie), if they may still see one; the plain page in
        `locale` for anyone else, or when Redis does not answer. Raises UnknownForm."""
        try:
            form = await self.require_form(form_id)
        except StoreUnavailable:
            # The submit was stored before Redis went: still thank them, from the cache.
            cached = self._catalog.cached
            if cached is None or form_id not in cached.forms:
                raise
            return ThanksView(form=cached.forms[form_id], locale=locale)
        plain = ThanksView(form=form, locale=locale)
        try:
            link = self._signer.verify(TokenPurpose.THANKS, token)
            admitted = await self._check(link, form_id, None)
        except (LinkRefused, StoreUnavailable):
            return plain
        if admitted.contact is None:
            return msgspec.structs.replace(plain, locale=admitted.customer.locale)
        try:
            await self._record_disclosure(admitted, Channel.PAGE, ["contact_person"])
        except StoreUnavailable:
            return plain  # Nothing personal leaves unaudited; the page still thanks them.
        return ThanksView(
            form=form,
            locale=admitted.customer.locale,
            contact=admitted.contact,
            # Dated like the submit, not like each reload: the card link cannot be kept fresh.
            card_token=self._signer.sign(TokenPurpose.CARD, link.claims, signed_at=link.signed_at),
            home_country=home_country(admitted.customer),
        )

    async def event_file(
        self, form_id: str, token: str | None, locale: Locale, uid_domain: str
    ) -> EventFile | None:
        """The form's event as an iCalendar file, organised by the submitter's contact person
        (as on their thank-you page), else by the form's fallback contact; None without an
        event. `uid_domain` (the service's host) makes the event's UID globally unique."""
        view = await self.thanks_view(form_id, token, locale)
        event = view.form.event
        if event is None:
            return None
        organizer = view.contact
        catalog = self._catalog.cached  # As fresh as thanks_view could make it.
        if organizer is None and catalog and view.form.fallback_contact_id:
            fallback = catalog.contacts.get(view.form.fallback_contact_id)
            organizer = fallback if fallback is not None and fallback.active else None
        text = to_icalendar(
            view.form, event, locale=view.locale, uid_domain=uid_domain, organizer=organizer
        )
        return EventFile(filename=ics_filename(view.form), text=text)

    # -- one-click unsubscribe (RFC 8058) ------------------------------------------------------

    def unsubscribe_link_valid(self, token: str | None) -> bool:
        """Whether an unsubscribe link is genuine and unexpired. Reads and changes nothing: mail
        scanners fetch every link, so a GET must never unsubscribe anyone."""
        try:
            self._signer.verify(TokenPurpose.UNSUBSCRIBE, token)
        except LinkRefused:
            return False
        return True

    async def unsubscribe_locale(self, token: str | None) -> Locale | None:
        """The language of an unsubscribe link's customer, which outranks the browser's; None
        for a bad link, an erased customer or a store that does not answer (the page must
        still work then)."""
        try:
            link = self._signer.verify(TokenPurpose.UNSUBSCRIBE, token)
            state = await self._repo.read_link_state(link.claims.customer_id)
        except (LinkRefused, CorruptRecord, StoreUnavailable):
            return None
        return state.customer.locale if state.customer else None

    async def unsubscribe(self, token: str | None, ip_prefix: str, user_agent: str) -> bool:
        """Withdraw the link's customer from email marketing; False for a bad link. Idempotent:
        a repeat records nothing. Neither a revoked campaign nor "Not you?" stops it: opting
        out must stay as easy as it was to opt in."""
        try:
            link = self._signer.verify(TokenPurpose.UNSUBSCRIBE, token)
        except LinkRefused:
            return False
        event = ConsentEvent(
            purpose=EMAIL_MARKETING,
            action=ConsentAction.WITHDRAWN,
            at=time.time(),
            source=ConsentSource.UNSUBSCRIBE,
            actor=f"unsubscribe link of campaign {link.claims.campaign_id}",
            ip_prefix=ip_prefix,
            user_agent=user_agent[:200],
        )
        # An erased customer has nothing left to withdraw: done, all the same.
        with contextlib.suppress(UnknownCustomer):
            outcome = await self._consents.record(link.claims.customer_id, event)
            if outcome.status == "recorded":
                # Durable already: a count that cannot be written is not worth an error page.
                with contextlib.suppress(StoreUnavailable):
                    await self._repo.count_funnel(funnel.unsubscribed(link.claims.campaign_id))
        return True

    async def check_ready(self) -> None:
        """Raises StoreUnavailable unless Redis answers and accepts writes."""
        await self._repo.check_writable()

    # -- forms ------------------------------------------------------------------------------

    async def form_view(
        self,
        form_id: str,
        token: str | None,
        channel: Channel,
        visitor: Visitor,
        origin: str | None = None,
    ) -> FormView:
        """The form, prefilled if the link admits its customer, otherwise generic and empty.
        `origin` is the embedding page's, for the widget: it must be one the form allows."""
        admitted = await self._admit(TokenPurpose.FORM, token, form_id, channel, visitor, origin)
        if admitted is None or admitted.form is None:
            return self.generic_form_view(form_id, visitor)
        values = disclosable_values(admitted.form, admitted.customer)
        # Only the customer's own page shows their consents; an embedding site never gets them.
        consents = (
            consent_states(admitted.form, admitted.consents) if channel is Channel.PAGE else {}
        )
        shown = sorted(values) + [f"consent:{purpose}" for purpose in sorted(consents)]
        await self._record_disclosure(admitted, channel, shown)
        return FormView(
            form=admitted.form,
            locale=admitted.customer.locale,
            values=values,
            contact=admitted.contact,
            greeting_name=greeting_name(admitted.form, values),
            form_token=token,
            # The card link inherits the form link's age, so it cannot outlive it.
            card_token=self._signer.sign_as(TokenPurpose.CARD, admitted.link),
            consents=consents,
            # Only a page formats phones; the widget's JSON gives them as stored (E.164), and
            # parsing the customer's number costs about a tenth of a widget request.
            home_country=home_country(admitted.customer) if channel is Channel.PAGE else None,
        )

    async def widget_view(
        self, form_id: str, token: str | None, origin: str | None, visitor: Visitor
    ) -> FormView:
        """The form for the embeddable widget. A browser request from an origin the form does
        not list gets nothing personal, even though CORS would also stop it reading the answer."""
        return await self.form_view(form_id, token, Channel.WIDGET, visitor, origin=origin)

    async def rejected_view(
        self, outcome: SubmitOutcome, token: str | None, visitor: Visitor
    ) -> FormView:
        """A rejected submit shown again with what was typed, and for a still good link the
        same personal page (contact person, "Not you?"): nothing stored is disclosed anew."""
        assert outcome.rejected is not None
        typed = outcome.rejected.typed
        plain = FormView(form=outcome.form, locale=outcome.locale, values=typed)
        try:
            admitted = await self._admit(
                TokenPurpose.FORM, token, outcome.form.id, Channel.PAGE, visitor, count_hit=False
            )
        except (StoreUnavailable, RateLimited):
            return plain  # What was typed is kept whatever the link's state.
        if admitted is None:
            return plain
        return msgspec.structs.replace(
            plain,
            contact=admitted.contact,
            greeting_name=greeting_name(outcome.form, typed),
            form_token=token,
            card_token=self._signer.sign_as(TokenPurpose.CARD, admitted.link),
            # Shown again as they were: the page disclosed them already, and must keep saying
            # which consents are in force.
            consents=consent_states(outcome.form, admitted.consents),
            home_country=home_country(admitted.customer),
        )

    def generic_form_view(self, form_id: str, visitor: Visitor) -> FormView:
        """The empty form from the cached catalog: no Redis needed, so it works when Redis is
        down. Raises UnknownForm."""
        catalog = self._catalog.cached
        form = catalog.forms.get(form_id) if catalog else None
        if form is None:
            raise UnknownForm(form_id)
        return FormView(form=form, locale=negotiate_locale(visitor.accept_language))

    async def require_form(self, form_id: str, catalog_version: int | None = None) -> Form:
        """The form with a fresh catalog (at `catalog_version`, just read, if given); raises
        UnknownForm."""
        form = (await self._catalog.current(catalog_version)).forms.get(form_id)
        if form is None:
            raise UnknownForm(form_id)
        return form

    async def withdraw_consent(
        self,
        form_id: str,
        token: str | None,
        purpose: str,
        ip_prefix: str,
        user_agent: str,
        visitor: Visitor,
    ) -> bool:
        """The customer withdraws, on their own form page, a consent the form asks for: as easy
        as giving it. False (nothing recorded) for a link that is not admitted, like any refused
        link; ConsentNotAsked for a purpose the form does not ask for. A repeat records
        nothing."""
        admitted = await self._admit(
            TokenPurpose.FORM, token, form_id, Channel.PAGE, visitor, count_hit=False
        )
        if admitted is None or admitted.form is None:
            return False
        notice = next((n for n in admitted.form.consents if n.purpose == purpose), None)
        if notice is None:
            raise ConsentNotAsked(purpose)
        event = ConsentEvent(
            purpose=purpose,
            action=ConsentAction.WITHDRAWN,
            at=time.time(),
            source=ConsentSource.FORM,
            notice_version=notice.version,
            actor="the customer, by form link",
            ip_prefix=ip_prefix,
            user_agent=user_agent[:200],
        )
        with contextlib.suppress(UnknownCustomer):  # Erased meanwhile: nothing left to withdraw.
            await self._consents.record(admitted.customer.id, event)
        return True

    async def not_you(self, form_id: str, token: str | None, visitor: Visitor) -> None:
        """The person at the screen is not the link's customer: kill all of that customer's
        links, so a forwarded email stops disclosing their data. Silent for any bad token."""
        admitted = await self._admit(
            TokenPurpose.FORM, token, form_id, Channel.PAGE, visitor, count_hit=False
        )
        if admitted is None:
            return
        await self._repo.bump_generation(admitted.customer.id)
        await self._repo.record_audit(
            AuditEntry(
                kind=AuditKind.NOT_YOU,
                at=time.time(),
                channel=Channel.PAGE,
                customer_id=admitted.customer.id,
                campaign_id=admitted.campaign.id,
                form_id=form_id,
                scanner=admitted.automation is not None,
            )
        )

    # -- contact cards ----------------------------------------------------------------------

    async def card_view(self, token: str | None, channel: Channel, visitor: Visitor) -> CardView:
        admitted = await self._admit(TokenPurpose.CARD, token, None, channel, visitor)
        if admitted is None or admitted.contact is None:
            return CardView(locale=negotiate_locale(visitor.accept_language))
        await self._record_disclosure(admitted, channel, ["contact_person"])
        return CardView(
            locale=admitted.customer.locale,
            contact=admitted.contact,
            card_token=token,
            home_country=home_country(admitted.customer),
        )

    async def vcard(self, token: str | None, visitor: Visitor) -> VCardFile | None:
        card = await self.card_view(token, Channel.VCARD, visitor)
        if card.contact is None:
            return None
        photo = await self._repo.contact_photo(card.contact.id) if card.contact.has_photo else None
        text = to_vcard(
            card.contact,
            title=pick(card.contact.title, card.locale),
            organization=self._organization,
            photo_jpeg=photo,
        )
        return VCardFile(filename=f"{card.contact.id}.vcf", text=text)

    async def contact_photo(self, contact_id: str) -> bytes | None:
        """A contact person's photo: company staff data, not the customer's, so no token."""
        contact = (await self._catalog.current()).contacts.get(contact_id)
        if contact is None or not contact.has_photo or not contact.active:
            return None  # Someone who has left is no longer shown anywhere.
        return await self._repo.contact_photo(contact_id)

    # -- the resolution every personal response goes through --------------------------------

    async def _admit(
        self,
        purpose: TokenPurpose,
        token: str | None,
        form_id: str | None,
        channel: Channel,
        visitor: Visitor,
        origin: str | None = None,
        count_hit: bool = True,
    ) -> _Admitted | None:
        """The link's customer and context if every check passes; otherwise None, with the
        cause in the audit log and the metrics. Raises StoreUnavailable (callers fail closed)
        and UnknownForm. `count_hit` adds the request to the campaign's funnel.

        Checked against the catalog read in the same round trip, so an origin removed from a
        form on another instance is refused on the very next request."""
        link: VerifiedLink | None = None
        try:
            link = self._signer.verify(purpose, token)
            admitted = await self._check(link, form_id, origin)
        except LinkRefused as refused:
            # An expired link's claims are authentic (refused.claims), and it is old: not early.
            claims = link.claims if link is not None else refused.claims
            hit = None
            # A site that may not embed the form is nobody's open.
            if count_hit and claims and refused.cause is not RefusalCause.ORIGIN_NOT_ALLOWED:
                person = self._person(claims, refused.cause in COUNTED_REFUSALS)
                automation = self._automation(link, visitor) if link else visitor.automation
                hit = _hit(claims.campaign_id, person, automation, channel, False)
            # Counted with the catalog's version read in the same round trip (one, not two:
            # about a fifth of a refused link's instructions), then the form is looked up in
            # that catalog: an unknown form is a 404, its refused token counted all the same.
            unchecked_form = form_id if link is None else None  # _check looked up the others
            version = await self._record_refusal(
                refused, link, channel, hit, visitor.address, unchecked_form is not None
            )
            if unchecked_form is not None:
                await self.require_form(unchecked_form, version)
            return None
        except StoreUnavailable:
            metrics.count_resolution(channel, metrics.REDIS_UNAVAILABLE)
            raise
        automation = self._automation(link, visitor)
        person = self._person(link.claims, True)
        hit = (
            _hit(link.claims.campaign_id, person, automation, channel, True) if count_hit else None
        )
        return msgspec.structs.replace(admitted, automation=automation, hit=hit)

    async def _check(
        self, link: VerifiedLink, form_id: str | None, origin: str | None
    ) -> _Admitted:
        """Every check of a validly signed link against stored state; raises LinkRefused, and
        RateLimited for a link requested too often (counted in the same round trip)."""
        rate = None
        if self._limits.enabled:
            identity = f"{link.purpose.value}:{msgspec.json.encode(link.claims).decode()}"
            rate = RateCount(LimitKind.LINK_REQUESTS, identity, self._limits.link_requests)
        try:
            state = await self._repo.read_link_state(link.claims.customer_id, rate)
        except CorruptRecord as exc:
            raise LinkRefused(RefusalCause.UNREADABLE_RECORD) from exc
        if rate is not None and state.requests is not None:
            ratelimit.check(rate.kind, rate.limit, state.requests)
        catalog = await self._catalog.current(state.catalog_version)
        if form_id is not None and form_id not in catalog.forms:
            raise UnknownForm(form_id)
        campaign = catalog.campaigns.get(link.claims.campaign_id)
        check_claims(link, campaign=campaign, customer=state.customer, form_id=form_id)
        assert campaign is not None  # check_claims refused a missing campaign and customer
        assert state.customer is not None
        form = catalog.forms.get(campaign.form_id)
        if origin is not None and (form is None or origin not in form.allowed_origins):
            raise LinkRefused(RefusalCause.ORIGIN_NOT_ALLOWED)
        refusal = consent_refusal(state.consents, _prefill_purpose(form))
        if refusal is not None:
            raise LinkRefused(refusal)
        return _Admitted(
            link=link,
            customer=state.customer,
            campaign=campaign,
            form=form,
            contact=contact_for(state.customer, form, catalog.contacts),
            consents=state.consents,
        )

    def _automation(self, link: VerifiedLink, visitor: Visitor) -> Automation | None:
        return link_automation(visitor.automation, link_age_seconds(link), self._scanner_window)

    def _person(self, claims: LinkClaims, countable: bool) -> funnel.Person:
        """The link's customer for the funnel, with their campaign's link lifetime (from the
        catalog the checks just read)."""
        catalog = self._catalog.cached
        campaign = catalog.campaigns.get(claims.campaign_id) if catalog else None
        lifetime = campaign.link_lifetime_seconds if campaign else 0
        return funnel.Person(claims.customer_id, lifetime, countable and lifetime > 0)

    async def _record_refusal(
        self,
        refused: LinkRefused,
        link: VerifiedLink | None,
        channel: Channel,
        hit: FunnelUpdate | None,
        address: str = "",
        read_catalog_version: bool = False,
    ) -> int | None:
        """Counts the refusal; returns the catalog's version, read in the same round trip, if
        asked (or when it came with the address's count anyway)."""
        # Counted, not streamed: anyone can replay a link (or send junk) any number of times.
        # Claims of a token whose signature failed are attacker-controlled: counted anonymously.
        day = time.strftime("%Y-%m-%d", time.gmtime())
        claims = link.claims if link is not None else refused.claims
        customer_id = claims.customer_id if claims is not None else None
        if refused.cause is RefusalCause.UNKNOWN_CUSTOMER:
            customer_id = None  # Never unknown, or erased: no key may be made under that id.
        version: int | None
        try:
            if self._guessing(refused, link) and address:
                # Counted against the address's limit in the same command; RateLimited over it.
                limit = self._limits.refused_links
                rate = RateCount(LimitKind.REFUSED_LINKS, address, limit)
                window, version = await self._repo.count_unsigned_refusal(
                    day, channel.value, refused.cause.value, rate
                )
                ratelimit.check(rate.kind, limit, window)
            else:
                version = await self._repo.count_refusal(
                    day,
                    channel.value,
                    refused.cause.value,
                    customer_id,
                    funnel=hit,
                    read_catalog_version=read_catalog_version,
                )
        except StoreUnavailable:
            metrics.count_resolution(channel, metrics.REDIS_UNAVAILABLE)
            raise
        metrics.count_resolution(channel, refused.cause.value)
        return version

    def _guessing(self, refused: LinkRefused, link: VerifiedLink | None) -> bool:
        """Whether a refusal counts against its address's limit: a token was sent and its
        signature did not verify. A valid signature (expired, revoked, no consent) was issued
        to someone; no token at all is the generic form anyone may open."""
        return (
            self._limits.enabled
            and link is None
            and refused.claims is None
            and refused.cause is not RefusalCause.MISSING
        )

    async def _record_disclosure(
        self, admitted: _Admitted, channel: Channel, fields: list[str]
    ) -> None:
        entry = AuditEntry(
            kind=AuditKind.DISCLOSURE,
            at=time.time(),
            channel=channel,
            customer_id=admitted.customer.id,
            campaign_id=admitted.campaign.id,
            form_id=admitted.form.id if admitted.form else "",
            fields=fields,
            scanner=admitted.automation is not None,
        )
        try:
            await self._repo.record_audit(entry, funnel=admitted.hit)
        except StoreUnavailable:
            metrics.count_resolution(channel, metrics.REDIS_UNAVAILABLE)
            raise
        metrics.count_resolution(channel, metrics.VALID)

    # -- the funnel: opens reported by page scripts, scanners' HEAD requests -------------------

    async def page_seen(self, purpose: TokenPurpose, token: str | None, visitor: Visitor) -> None:
        """A page opened with a link reports that its script ran in a visible browser tab: an
        open by a person (unless the request looks automated), and for a form link admitted
        now, a form shown prefilled. Best effort and silent: it discloses nothing, and a
        lost count must not trouble the person."""
        try:
            link = self._signer.verify(purpose, token)
        except LinkRefused:
            return
        automation = self._automation(link, visitor)
        countable = prefilled = False
        with contextlib.suppress(StoreUnavailable):
            if automation is None:
                try:
                    await self._check(link, None, None)
                except LinkRefused as refused:
                    countable = refused.cause in COUNTED_REFUSALS
                else:
                    countable, prefilled = True, purpose is TokenPurpose.FORM
            person = self._person(link.claims, countable)
            await self._repo.count_funnel(
                funnel.hit(
                    link.claims.campaign_id,
                    person,
                    automation,
                    script_ran=True,
                    prefilled=prefilled,
                )
            )

    async def count_head(self, purpose: TokenPurpose, token: str | None) -> None:
        """A HEAD request for a link: a scanner's hit on its campaign. Nothing is read and
        nothing disclosed; a count that cannot be written is dropped."""
        try:
            link = self._signer.verify(purpose, token)
        except LinkRefused:
            return
        nobody = funnel.Person("", 0, countable=False)
        update = funnel.hit(
            link.claims.campaign_id, nobody, Automation.HEAD, script_ran=False, prefilled=False
        )
        with contextlib.suppress(StoreUnavailable):
            await self._repo.count_funnel(update)


COUNTED_REFUSALS = frozenset(
    {RefusalCause.CONSENT_MISSING, RefusalCause.CONSENT_WITHDRAWN, RefusalCause.REVOKED_CUSTOMER}
)
"""Refused links whose customer still counts as a distinct person: the link is within its
campaign's life and names a customer; they may just not see their data. (Others count as
events only: an expired or revoked campaign's link, an erased customer's.)"""


def _hit(
    campaign_id: str,
    person: funnel.Person,
    automation: Automation | None,
    channel: Channel,
    admitted: bool,
) -> FunnelUpdate:
    """What a request for a link adds to its campaign's funnel. The widget's request is made
    by its script, so it is an open; a page's open is reported by its script (`page_seen`)."""
    script_ran = channel is Channel.WIDGET
    return funnel.hit(
        campaign_id, person, automation, script_ran=script_ran, prefilled=script_ran and admitted
    )


def _prefill_purpose(form: Form | None) -> str:
    return form.prefill_purpose if form else "personalization"
