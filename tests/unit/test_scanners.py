"""Scanners told apart by their user agent: the lower-cased ASCII match agrees with the
case-insensitive pattern it replaced, on real agents and on random text."""

from __future__ import annotations

import random
import re

import pytest

from prefill.scanners import Automation, request_automation

# The pattern as it was, case-insensitive and searched as it stood: what the agents must match.
REFERENCE = re.compile(
    r"(?<!cu)bot\b|crawler|spider|preview|scanner|barracuda|mimecast|proofpoint|safe ?links|"
    r"urldefense|trendmicro|trend micro|symantec|forcepoint|fireeye|sophos|cisco|"
    r"python-requests|python-httpx|python-urllib|aiohttp|go-http-client|"
    r"curl/|wget|java/|okhttp|libwww|httpie|node-fetch|axios|apache-httpclient",
    re.IGNORECASE,
)

AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 12; CUBOT KingKong 7) AppleWebKit/537.36 Chrome/120 Mobile",
    "Mozilla/5.0 (Linux; Android 12; KingKong CuBot) Chrome/120",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0)",
    "robot",
    "Bot",
    "abot_x",
    "cubotx bot",
    "Slackbot-LinkExpanding 1.0",
    "Mimecast Security Scanner",
    "Microsoft Office Safe Links",
    "SafeLinks",
    "URLDefense/ProofPoint",
    "Trend Micro",
    "CURL/8.5.0",
    "Wget/1.21",
    "python-requests/2.32",
    "Python-urllib/3.11",
    "Java/17.0.2",
    "okhttp/4.12",
    "Go-http-client/1.1",
    "Apache-HttpClient/4.5",
    "WhatsApp/2.23 link preview",
    "Mozilla/5.0 (Windows NT 10.0) Gecko Firefox/133.0 \xe9dition fran\xe7aise",
    "\u017fcanner",  # a long s: case-insensitively an s
    "\u212aingKong bot",  # a Kelvin sign: case-insensitively a k
    "\u0130nternet crawler",
    "python-reque\u017fts",
    "Mozilla/5.0 Firefox",
]


@pytest.mark.parametrize("agent", AGENTS)
def test_an_agent_is_automated_as_the_case_insensitive_pattern_says(agent: str) -> None:
    expected = Automation.AGENT if REFERENCE.search(agent) else None
    assert request_automation("GET", agent) is expected


def test_random_agents_agree_with_the_case_insensitive_pattern() -> None:
    rng = random.Random(20261204)
    words = [w for w in re.split(r"[|\\?()<!]+", REFERENCE.pattern) if w] + ["cu", "Bot", " "]
    letters = "aAbBcCkKsStTuUoO /-_.;\u017f\u212a\xe9"
    found = 0
    for _ in range(20_000):
        parts = [
            rng.choice(words) if rng.random() < 0.3 else rng.choice(letters)
            for _ in range(rng.randrange(1, 8))
        ]
        agent = "".join(part.upper() if rng.random() < 0.3 else part for part in parts)
        expected = Automation.AGENT if REFERENCE.search(agent) else None
        assert request_automation("GET", agent) is expected, agent
        found += expected is not None
    assert 2_000 < found < 18_000  # both outcomes were tried, many times


def test_no_agent_and_head_requests_are_automated() -> None:
    assert request_automation("GET", None) is Automation.AGENT
    assert request_automation("GET", "") is Automation.AGENT
    assert request_automation("head", "Mozilla/5.0 Firefox") is Automation.HEAD
