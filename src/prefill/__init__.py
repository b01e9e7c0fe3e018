"""prefill: signed email links that open prefilled, consent-gated forms."""

__version__ = "0.1.0"
