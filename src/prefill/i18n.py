"""Choosing the customer's language, and the interface texts in Finnish, Swedish and English."""

from __future__ import annotations

from prefill.models import DEFAULT_LOCALE, SUPPORTED_LOCALES, Locale, Translated


def negotiate_locale(accept_language: str | None) -> Locale:
    """The best supported locale for an Accept-Language header (RFC 9110 quality values)."""
    supported: dict[str, Locale] = {locale: locale for locale in SUPPORTED_LOCALES}
    candidates: list[tuple[float, int, Locale]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        locale = supported.get(tag.strip().lower().split("-")[0])
        if locale is not None and quality > 0:
            # Earlier entries win ties: browsers list preferences in order.
            candidates.append((quality, -position, locale))
    return max(candidates)[2] if candidates else DEFAULT_LOCALE


def pick(texts: Translated, locale: Locale) -> str:
    """The text in `locale`, else English, else any text there is."""
    return texts.get(locale) or texts.get(DEFAULT_LOCALE) or next(iter(texts.values()), "")


UI_TEXTS: dict[str, Translated] = {
    "your_contact": {
        "fi": "Yhteyshenkilösi",
        "sv": "Din kontaktperson",
        "en": "Your contact person",
    },
    "our_team": {"fi": "Ota yhteyttä", "sv": "Kontakta oss", "en": "Get in touch"},
    "call": {"fi": "Soita", "sv": "Ring", "en": "Call"},
    "email": {"fi": "Sähköposti", "sv": "E-post", "en": "Email"},
    "add_to_contacts": {
        "fi": "Lisää yhteystietoihin",
        "sv": "Lägg till i kontakter",
        "en": "Add to contacts",
    },
    "not_you": {"fi": "Etkö ole {name}?", "sv": "Är du inte {name}?", "en": "Not {name}?"},
    "not_you_plain": {"fi": "Etkö ole sinä?", "sv": "Är det inte du?", "en": "Not you?"},
    "not_you_button": {
        "fi": "Tyhjennä tiedot ja poista tämä linkki käytöstä",
        "sv": "Töm uppgifterna och stäng den här länken",
        "en": "Clear my details and disable this link",
    },
    "prefilled_note": {
        "fi": "Täytimme tiedot valmiiksi. Tarkista ja korjaa tarvittaessa.",
        "sv": "Vi har fyllt i dina uppgifter. Kontrollera och rätta vid behov.",
        "en": "We have filled in what we know. Please check and correct it.",
    },
    "masked_note": {
        "fi": "Osittain piilotettu tieto säilyy ennallaan, ellet kirjoita uutta.",
        "sv": "Delvis dold uppgift förblir oförändrad om du inte skriver en ny.",
        "en": "A partly hidden value stays as it is unless you type a new one.",
    },
    "required": {"fi": "pakollinen", "sv": "obligatorisk", "en": "required"},
    "choose": {"fi": "Valitse…", "sv": "Välj…", "en": "Choose…"},
    "submit": {"fi": "Ilmoittaudu", "sv": "Anmäl dig", "en": "Register"},
    "card_title": {
        "fi": "Yhteyshenkilösi",
        "sv": "Din kontaktperson",
        "en": "Your contact person",
    },
    "card_unavailable": {
        "fi": "Tällä linkillä ei voi näyttää yhteyshenkilön tietoja. "
        "Ota yhteyttä asiakaspalveluumme.",
        "sv": "Kontaktuppgifterna kan inte visas via den här länken. Kontakta vår kundtjänst.",
        "en": "No contact card can be shown for this link. Please contact our customer service.",
    },
    "home_title": {
        "fi": "Henkilökohtaiset linkit",
        "sv": "Personliga länkar",
        "en": "Personal links",
    },
    "home_body": {
        "fi": "Tämä palvelu avaa sähköposteissamme olevat henkilökohtaiset linkit.",
        "sv": "Den här tjänsten öppnar de personliga länkarna i våra e-postmeddelanden.",
        "en": "This service opens the personal links in our emails.",
    },
    "unavailable_title": {
        "fi": "Palvelu on tilapäisesti poissa käytöstä",
        "sv": "Tjänsten är tillfälligt otillgänglig",
        "en": "The service is temporarily unavailable",
    },
    "unavailable_body": {
        "fi": "Yritä hetken kuluttua uudelleen.",
        "sv": "Försök igen om en stund.",
        "en": "Please try again in a moment.",
    },
    "bad_request_title": {
        "fi": "Pyyntöä ei voitu käsitellä",
        "sv": "Begäran kunde inte behandlas",
        "en": "The request could not be handled",
    },
    "bad_request_body": {
        "fi": "Palaa edelliselle sivulle ja yritä uudelleen.",
        "sv": "Gå tillbaka till föregående sida och försök igen.",
        "en": "Please go back to the previous page and try again.",
    },
    "not_found_title": {
        "fi": "Sivua ei löytynyt",
        "sv": "Sidan hittades inte",
        "en": "Page not found",
    },
    "not_found_body": {
        "fi": "Tarkista osoite.",
        "sv": "Kontrollera adressen.",
        "en": "Please check the address.",
    },
    "open_card": {
        "fi": "Avaa käyntikortti",
        "sv": "Öppna visitkortet",
        "en": "Open the contact card",
    },
    "language": {"fi": "Kieli", "sv": "Språk", "en": "Language"},
}


def ui_text(key: str, locale: Locale, **values: str) -> str:
    """An interface text in `locale`; `values` fill its `{placeholders}`."""
    return pick(UI_TEXTS[key], locale).format(**values)
