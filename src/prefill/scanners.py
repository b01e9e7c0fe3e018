"""Telling automated link scanners (mail security gateways, previewers) from people.

Scanners fetch every link in an email, often before the person sees it. They get the same
response as anyone else; what they are told apart for is the audit flag and the funnel, where
their hits are counted apart and never as opens.
"""

from __future__ import annotations

import enum
import re

_AGENTS = (
    # "bot" not after "cu" (Cubot phones): the look-behind after the literal, so that every
    # alternative starts with one and `re` skips ahead to the positions one could start at.
    r"bot(?<!cubot)\b|crawler|spider|preview|scanner|barracuda|mimecast|proofpoint|safe ?links|"
    r"urldefense|trendmicro|trend micro|symantec|forcepoint|fireeye|sophos|cisco|"
    r"python-requests|python-httpx|python-urllib|aiohttp|go-http-client|"
    r"curl/|wget|java/|okhttp|libwww|httpie|node-fetch|axios|apache-httpclient"
)
_AUTOMATED_AGENTS = re.compile(_AGENTS, re.IGNORECASE)
"""Agents that say what they are. A headless browser is not on the list: people's own tools
(and tests) drive one too, and a scanner that renders pages in one is caught by timing."""
_AUTOMATED_ASCII_AGENTS = re.compile(_AGENTS)
"""The same for an ASCII agent lower-cased (every real one): `re.IGNORECASE` tries each
alternative at every position, about 270,000 instructions for a browser's agent, against
15,000 (callgrind). For ASCII text, lower-casing matches exactly what it matches."""


class Automation(enum.StrEnum):
    """Why a request looks automated."""

    HEAD = "head"
    """A HEAD request: previewers and scanners check links that way; browsers never do."""
    AGENT = "agent"
    """No user agent, or a known scanner, previewer or HTTP library."""
    EARLY = "early"
    """Within seconds of the link being issued: faster than a person reads an email."""


def request_automation(method: str, user_agent: str | None) -> Automation | None:
    """What the request alone tells: a HEAD request or an automated agent."""
    if method.upper() == "HEAD":
        return Automation.HEAD
    if not user_agent:
        return Automation.AGENT
    if user_agent.isascii():
        found = _AUTOMATED_ASCII_AGENTS.search(user_agent.lower())
    else:  # Case folding matches more than lower-casing (a Kelvin sign for k, a long s for s)
        found = _AUTOMATED_AGENTS.search(user_agent)
    if found is not None:
        return Automation.AGENT
    return None


def link_automation(
    request: Automation | None, link_age_seconds: float, window_seconds: float
) -> Automation | None:
    """The request's own signal, else EARLY when the link is younger than `window_seconds`
    (links minted just before sending make their signing time the send time)."""
    if request is not None:
        return request
    return Automation.EARLY if link_age_seconds < window_seconds else None
