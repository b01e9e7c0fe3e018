"""What the OpenAPI document says about errors: each JSON route lists the statuses it can give,
so a client (and the schemathesis run in the tests) can rely on the document."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from prefill.web.errors import ErrorOut

ERROR_MEANINGS = {
    400: "The request is malformed; `extra` names each invalid field.",
    401: "No API key, or an unknown or revoked one.",
    403: "The API key lacks the scope this operation needs.",
    404: "No such record (or form).",
    409: "The change contradicts stored state, or an Idempotency-Key was reused.",
    413: "The request body is too large.",
    415: "The body is not sent as `Content-Type: application/json`.",
    422: "The record names another one that does not exist.",
    429: "Too many requests from this address or for this link: retry after `Retry-After`.",
    503: "Redis is unavailable: nothing was read or changed. Retry after `Retry-After`.",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(
            data_container=ErrorOut, description=ERROR_MEANINGS[code], generate_examples=False
        )
        for code in codes
    }


ADMIN_ERRORS = error_responses(401, 403, 404, 409, 413, 422, 429, 503)
JSON_BODY_ERRORS = error_responses(415)
"""What an admin operation that takes a body can answer besides `ADMIN_ERRORS`."""
PUBLIC_API_ERRORS = error_responses(404, 429, 503)
