"""Telling automated link scanners (mail security gateways, previewers) from people.

Scanners fetch every link in an email, often before the person sees it. They get the same
response as anyone else; what they are told apart for is the audit flag and the funnel, where
their hits are counted apart and never as opens.
"""

from __future__ import annotations

import enum
import re

_AUTOMATED_AGENTS = re.compile(
    r"(?<!cu)bot\b|crawler|spider|preview|scanner|barracuda|mimecast|proofpoint|safe ?links|"
    r"urldefense|trendmicro|trend micro|symantec|forcepoint|fireeye|sophos|cisco|"
    r"python-requests|python-httpx|python-urllib|aiohttp|go-http-client|"
    r"curl/|wget|java/|okhttp|libwww|httpie|node-fetch|axios|apache-httpclient",
    re.IGNORECASE,
)
"""Agents that say what they are. A headless browser is not on the list: people's own tools
(and tests) drive one too, and a scanner that renders pages in one is caught by timing."""


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
    if not user_agent or _AUTOMATED_AGENTS.search(user_agent) is not None:
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
