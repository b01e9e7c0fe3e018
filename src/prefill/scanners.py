"""Telling automated link scanners (mail security gateways, previewers) from people.

Scanners fetch every link in an email before the person sees it. They get the same response as
anyone else; the flag only goes into the audit log and, later, keeps them out of open counts.
"""

from __future__ import annotations

import re

_SCANNER_AGENTS = re.compile(
    r"bot\b|crawler|spider|preview|scanner|barracuda|mimecast|proofpoint|safelinks|"
    r"urldefense|trendmicro|trend micro|symantec|forcepoint|fireeye|sophos|cisco|"
    r"python-requests|go-http-client|headlesschrome|wget|java/",
    re.IGNORECASE,
)


def looks_like_scanner(method: str, user_agent: str | None) -> bool:
    """True for HEAD requests, missing user agents and known scanner agents."""
    if method.upper() == "HEAD" or not user_agent:
        return True
    return _SCANNER_AGENTS.search(user_agent) is not None
