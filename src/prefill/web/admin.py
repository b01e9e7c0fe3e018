"""The internal admin API: records, consent, audit, export, erasure and keys, behind API keys.

Every route names the one scope it needs in `opt`; a single guard checks the key (401 without a
valid one, 403 without the scope) before the body is even read.
"""

from __future__ import annotations

import base64
import inspect
import io
import time
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, delete, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import (
    BodyKwarg,
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    QueryParameter,
)
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import ASGIApp, Receive, Send
from litestar.types import Scope as AsgiScope

from prefill.admin import (
    AdminService,
    ConsentState,
    CustomerExport,
    ErasureReceipt,
    MintResult,
)
from prefill.apikeys import ApiKey, Scope
from prefill.csv_safe import SafeWriter
from prefill.funnel import CampaignFunnel
from prefill.funnel import table as funnel_table
from prefill.models import (
    Actor,
    AuditEntry,
    Campaign,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ContactPerson,
    Customer,
    Form,
    ShortText,
)
from prefill.purposes import ConsentPurpose
from prefill.ratelimit import address_subject
from prefill.store import CustomerPage
from prefill.web.deps import client_address, evidence_ip
from prefill.web.openapi import ADMIN_ERRORS, JSON_BODY_ERRORS

AdminDep = NamedDependency[AdminService]
REQUEST_ID = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="A client-chosen id: a retry with the same id and body is recorded once.",
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        required=False,
    ),
]


def provide_admin(state: State) -> AdminService:
    admin: AdminService = state.admin
    return admin


def presented_key(authorization: str, basic: bool) -> str:
    """The API key in an Authorization header: `Bearer <key>`, or where `basic` (pages a person
    opens in a browser), `Basic` with the key as the password (the user name is not used); ""
    if there is none."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic" and basic:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
            return ""
        return decoded.partition(":")[2].strip()
    return ""


async def require_scope(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """401 unless a valid key is presented (see `presented_key`); 403 unless it carries the
    route's scope. The key is kept on the request for the audit trail.

    Read-only pages for a browser (`opt["browser"]`) ask for the key with the browser's own
    login prompt. Nothing else takes a key that way: a browser sends remembered Basic
    credentials with any request, a cross-site form's included, and the admin API's changes
    have no CSRF token (a Bearer key is never sent by a browser on its own)."""
    browser = bool(handler.opt.get("browser"))
    challenge = 'Basic realm="prefill admin", charset="UTF-8"'
    if not browser:
        challenge = 'Bearer realm="prefill-admin"'
    presented = presented_key(connection.headers.get("authorization", ""), basic=browser)
    if not presented:
        raise NotAuthorizedException(
            detail="An API key is required: send 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": challenge},
        )
    admin: AdminService = connection.app.state.admin
    key = await admin.authenticate(presented, address_subject(client_address(connection)))
    if key is None:
        if not browser:
            challenge += ', error="invalid_token"'
        raise NotAuthorizedException(
            detail="This API key is unknown or has been revoked.",
            headers={"WWW-Authenticate": challenge},
        )
    needed = Scope(handler.opt["scope"])
    if needed not in key.scopes:
        raise PermissionDeniedException(detail=f"This API key lacks the '{needed}' scope.")
    connection.state.admin_key = key


async def require_json_body(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """415 for a body that says it is anything but JSON, or says nothing: text/plain is what a
    cross-site form may send without a preflight, and a guess at the format is no contract."""
    if not handler.opt.get("json_body"):
        return
    media_type = connection.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise ClientException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="Send the body as JSON, with 'Content-Type: application/json'.",
        )


def actor_of(request: Request[Any, Any, Any]) -> Actor:
    key: ApiKey = request.state.admin_key
    return Actor(
        name=f"key:{key.id} ({key.name})",
        ip_prefix=evidence_ip(request),
        user_agent=request.headers.get("user-agent", "")[:200],
    )


def _same_id(path_id: str, body_id: str) -> None:
    if path_id != body_id:
        raise ClientException(
            detail=f"The id in the body ({body_id!r}) differs from the id in the path.",
            extra=[{"key": "id", "message": "must equal the id in the path"}],
        )


CUSTOMER_EXAMPLE = {
    "id": "cust-2001",
    "email": "liisa.laine@example.fi",
    "first_name": "Liisa",
    "last_name": "Laine",
    "phone": "+358401234567",
    "company": "Laine Lab Oy",
    "locale": "fi",
    "owner_id": "aino-virtanen",
}


def json_body(*values: dict[str, Any]) -> BodyKwarg:
    """A JSON body with examples for the OpenAPI document."""
    return BodyKwarg(
        media_type=RequestEncodingType.JSON, examples=[Example(value=v) for v in values]
    )


def created_as(record: type) -> dict[int, ResponseSpec]:
    return {201: ResponseSpec(record, description="Created (200 means replaced).")}


# -- API keys ---------------------------------------------------------------------------------


class KeyIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: ShortText
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1)]


class KeyOut(msgspec.Struct, frozen=True):
    id: str
    name: str
    scopes: list[Scope]
    created_at: float


class NewKeyOut(msgspec.Struct, frozen=True):
    key: KeyOut
    secret: str
    """Shown once: only a digest is stored."""


def _key_out(key: ApiKey) -> KeyOut:
    return KeyOut(id=key.id, name=key.name, scopes=key.scopes, created_at=key.created_at)


@get("/keys", opt={"scope": Scope.KEYS}, summary="List API keys")
async def list_keys(admin: AdminDep) -> list[KeyOut]:
    return [_key_out(k) for k in await admin.list_keys()]


@post("/keys", opt={"scope": Scope.KEYS}, summary="Create an API key (the secret is shown once)")
async def create_key(
    admin: AdminDep,
    data: Annotated[KeyIn, json_body({"name": "support desk", "scopes": ["read", "consent"]})],
    request: Request[Any, Any, Any],
) -> NewKeyOut:
    new = await admin.create_key(
        data.name, data.scopes, actor_of(request), granter=request.state.admin_key
    )
    return NewKeyOut(key=_key_out(new.key), secret=new.secret)


@delete("/keys/{key_id:str}", opt={"scope": Scope.KEYS}, summary="Revoke an API key")
async def revoke_key(
    admin: AdminDep, key_id: FromPath[str], request: Request[Any, Any, Any]
) -> None:
    await admin.revoke_key(key_id, actor_of(request))


# -- customers --------------------------------------------------------------------------------


@get("/customers", opt={"scope": Scope.READ}, summary="List customer ids (cursor-paged)")
async def list_customers(
    admin: AdminDep,
    cursor: Annotated[
        int, QueryParameter(ge=0, le=2**53 - 1, description="0 to start, then the answer's cursor")
    ] = 0,
    count: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> CustomerPage:
    return await admin.customer_ids(cursor, count)


@get("/customers/{customer_id:str}", opt={"scope": Scope.READ}, summary="Read a customer")
async def read_customer(
    admin: AdminDep, customer_id: FromPath[str], request: Request[Any, Any, Any]
) -> Customer:
    return await admin.read_customer(customer_id, actor_of(request))


@put(
    "/customers/{customer_id:str}",
    responses=created_as(Customer),
    opt={"scope": Scope.DATA},
    summary="Create or replace a customer",
    description="`generation` in the body is ignored: the stored link generation is kept.",
    status_code=HTTP_200_OK,
)
async def put_customer(
    admin: AdminDep,
    customer_id: FromPath[str],
    data: Annotated[Customer, json_body(CUSTOMER_EXAMPLE)],
    request: Request[Any, Any, Any],
) -> Response[Customer]:
    _same_id(customer_id, data.id)
    stored, created = await admin.put_customer(data, actor_of(request))
    return Response(stored, status_code=HTTP_201_CREATED if created else HTTP_200_OK)


@delete(
    "/customers/{customer_id:str}",
    opt={"scope": Scope.ERASE},
    summary="Erase a customer (GDPR Art. 17)",
    description="Deletes every key of the customer and kills all their links. A pseudonymous "
    "tombstone is kept: see docs/record-of-processing.md. Answers only once the erasure is "
    "durable. Send `Idempotency-Key` to make retries safe: a retry with the same key is "
    "answered as the first erasure, not 404.",
    status_code=HTTP_200_OK,
)
async def erase_customer(
    admin: AdminDep,
    customer_id: FromPath[str],
    request: Request[Any, Any, Any],
    idempotency_key: REQUEST_ID = None,
) -> ErasureReceipt:
    return await admin.erase(customer_id, actor_of(request), idempotency_key or "")


@get(
    "/customers/{customer_id:str}/export",
    opt={"scope": Scope.READ},
    summary="Export everything held about a customer (GDPR Art. 15)",
)
async def export_customer(
    admin: AdminDep, customer_id: FromPath[str], request: Request[Any, Any, Any]
) -> CustomerExport:
    return await admin.export(customer_id, actor_of(request))


# -- consent ----------------------------------------------------------------------------------


Note = Annotated[str, msgspec.Meta(max_length=200)]
"""How the customer asked, e.g. `phone call, ticket 4711` (kept with the actor)."""


class ConsentGrant(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="action", tag="granted"
):
    """A grant on the customer's behalf (source `admin`): it names the notice agreed to."""

    purpose: ConsentPurpose
    notice_version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    note: Note = ""


class ConsentWithdrawal(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="action", tag="withdrawn"
):
    """A withdrawal on the customer's behalf (source `admin`)."""

    purpose: ConsentPurpose
    note: Note = ""


ConsentChange = ConsentGrant | ConsentWithdrawal


class ConsentResult(msgspec.Struct, frozen=True):
    status: str
    """`recorded`, `unchanged` (already the current state), or `replayed` (same request id)."""
    event: ConsentEvent | None


@get(
    "/customers/{customer_id:str}/consent",
    opt={"scope": Scope.READ},
    summary="Current consent per purpose, and the full history",
)
async def read_consent(
    admin: AdminDep, customer_id: FromPath[str], request: Request[Any, Any, Any]
) -> ConsentState:
    return await admin.read_consent(customer_id, actor_of(request))


@post(
    "/customers/{customer_id:str}/consent",
    opt={"scope": Scope.CONSENT},
    summary="Grant or withdraw consent for a purpose",
    responses={201: ResponseSpec(ConsentResult, description="Recorded (a new event).")},
    description="Answers only once the event is durable. Send `Idempotency-Key` to make "
    "retries safe: the same key and body are recorded once.",
    status_code=HTTP_200_OK,
)
async def change_consent(
    admin: AdminDep,
    customer_id: FromPath[str],
    data: Annotated[
        ConsentChange,
        json_body(
            {"purpose": "email_marketing", "action": "withdrawn", "note": "phone call"},
            {"purpose": "personalization", "action": "granted", "notice_version": "pz-2026-01"},
        ),
    ],
    request: Request[Any, Any, Any],
    idempotency_key: REQUEST_ID = None,
) -> Response[ConsentResult]:
    actor = actor_of(request)
    event = ConsentEvent(
        purpose=data.purpose.value,
        action=(
            ConsentAction.GRANTED if isinstance(data, ConsentGrant) else ConsentAction.WITHDRAWN
        ),
        at=time.time(),
        source=ConsentSource.ADMIN,
        notice_version=data.notice_version if isinstance(data, ConsentGrant) else "",
        actor=f"{actor.name}{': ' + data.note if data.note else ''}",
        ip_prefix=actor.ip_prefix,
        user_agent=actor.user_agent,
    )
    outcome = await admin.change_consent(customer_id, event, idempotency_key or "")
    status = HTTP_201_CREATED if outcome.status == "recorded" else HTTP_200_OK
    return Response(ConsentResult(outcome.status, outcome.event), status_code=status)


# -- audit ------------------------------------------------------------------------------------


@get(
    "/audit",
    opt={"scope": Scope.READ},
    summary="Audit entries, newest first",
    description="Everyone's, or one customer's (`customer_id`), between `since` and `until` "
    "(Unix seconds).",
)
async def read_audit(
    admin: AdminDep,
    customer_id: FromQuery[str | None] = None,
    since: FromQuery[float | None] = None,
    until: FromQuery[float | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
) -> list[AuditEntry]:
    return await admin.audit(customer_id, since, until, limit)


# -- the funnel -------------------------------------------------------------------------------

CAMPAIGN_FILTER = Annotated[
    str | None,
    QueryParameter(description="Only this campaign (404 if there is none)", max_length=64),
]


@get(
    "/funnel",
    opt={"scope": Scope.READ, "browser": True},  # The dashboard links here.
    summary="Each campaign's funnel",
    description="Links issued, then distinct people who opened a link in a browser (a page "
    "script ran), were shown the form prefilled, submitted it; unsubscribes through the "
    "campaign's links; prefilled fields people corrected; and automated scanners' hits, "
    "which never count as opens. Counters only: nothing personal.",
)
async def read_funnel(admin: AdminDep, campaign_id: CAMPAIGN_FILTER = None) -> list[CampaignFunnel]:
    return await admin.funnels(campaign_id)


@get(
    "/funnel.csv",
    opt={"scope": Scope.READ, "browser": True},
    summary="Each campaign's funnel, as CSV",
    description="The figures of `/funnel`, one row per campaign; a `corrected_<field>` column "
    "per corrected field.",
    media_type="text/csv",
)
async def read_funnel_csv(admin: AdminDep, campaign_id: CAMPAIGN_FILTER = None) -> Response[str]:
    header, rows = funnel_table(await admin.funnels(campaign_id))
    text = io.StringIO()
    writer = SafeWriter(text)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        text.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="funnel.csv"'},
    )


# -- forms, campaigns, contact persons ----------------------------------------------------------


@get("/forms", opt={"scope": Scope.READ}, summary="List forms")
async def list_forms(admin: AdminDep) -> list[Form]:
    return await admin.entries(Form)


@get("/forms/{form_id:str}", opt={"scope": Scope.READ}, summary="Read a form")
async def read_form(admin: AdminDep, form_id: FromPath[str]) -> Form:
    return await admin.entry(Form, form_id)


@put(
    "/forms/{form_id:str}",
    responses=created_as(Form),
    opt={"scope": Scope.DATA},
    summary="Create or replace a form",
    status_code=HTTP_200_OK,
)
async def put_form(
    admin: AdminDep, form_id: FromPath[str], data: JSONBody[Form], request: Request[Any, Any, Any]
) -> Response[Form]:
    _same_id(form_id, data.id)
    created = await admin.put_entry(data, actor_of(request))
    return Response(data, status_code=HTTP_201_CREATED if created else HTTP_200_OK)


@delete("/forms/{form_id:str}", opt={"scope": Scope.DATA}, summary="Delete a form")
async def delete_form(
    admin: AdminDep, form_id: FromPath[str], request: Request[Any, Any, Any]
) -> None:
    await admin.delete_entry(Form, form_id, actor_of(request))


@get("/campaigns", opt={"scope": Scope.READ}, summary="List campaigns")
async def list_campaigns(admin: AdminDep) -> list[Campaign]:
    return await admin.entries(Campaign)


@get("/campaigns/{campaign_id:str}", opt={"scope": Scope.READ}, summary="Read a campaign")
async def read_campaign(admin: AdminDep, campaign_id: FromPath[str]) -> Campaign:
    return await admin.entry(Campaign, campaign_id)


@put(
    "/campaigns/{campaign_id:str}",
    responses=created_as(Campaign),
    opt={"scope": Scope.DATA},
    summary="Create or replace a campaign",
    status_code=HTTP_200_OK,
)
async def put_campaign(
    admin: AdminDep,
    campaign_id: FromPath[str],
    data: JSONBody[Campaign],
    request: Request[Any, Any, Any],
) -> Response[Campaign]:
    _same_id(campaign_id, data.id)
    created = await admin.put_entry(data, actor_of(request))
    return Response(data, status_code=HTTP_201_CREATED if created else HTTP_200_OK)


@delete(
    "/campaigns/{campaign_id:str}",
    opt={"scope": Scope.DATA},
    summary="Delete a campaign: it is revoked, and its id stays taken",
)
async def delete_campaign(
    admin: AdminDep, campaign_id: FromPath[str], request: Request[Any, Any, Any]
) -> None:
    await admin.delete_entry(Campaign, campaign_id, actor_of(request))


@get("/contacts", opt={"scope": Scope.READ}, summary="List contacts")
async def list_contacts(admin: AdminDep) -> list[ContactPerson]:
    return await admin.entries(ContactPerson)


@get("/contacts/{contact_id:str}", opt={"scope": Scope.READ}, summary="Read a contact person")
async def read_contact(admin: AdminDep, contact_id: FromPath[str]) -> ContactPerson:
    return await admin.entry(ContactPerson, contact_id)


@put(
    "/contacts/{contact_id:str}",
    responses=created_as(ContactPerson),
    opt={"scope": Scope.DATA},
    summary="Create or replace a contact person",
    status_code=HTTP_200_OK,
)
async def put_contact(
    admin: AdminDep,
    contact_id: FromPath[str],
    data: JSONBody[ContactPerson],
    request: Request[Any, Any, Any],
) -> Response[ContactPerson]:
    _same_id(contact_id, data.id)
    created = await admin.put_entry(data, actor_of(request))
    return Response(data, status_code=HTTP_201_CREATED if created else HTTP_200_OK)


@delete("/contacts/{contact_id:str}", opt={"scope": Scope.DATA}, summary="Delete a contact person")
async def delete_contact(
    admin: AdminDep, contact_id: FromPath[str], request: Request[Any, Any, Any]
) -> None:
    await admin.delete_entry(ContactPerson, contact_id, actor_of(request))


@post(
    "/campaigns/{campaign_id:str}/revoke",
    opt={"scope": Scope.DATA},
    summary="Revoke a campaign: all its links stop working, for good",
    status_code=HTTP_200_OK,
)
async def revoke_campaign(
    admin: AdminDep, campaign_id: FromPath[str], request: Request[Any, Any, Any]
) -> Campaign:
    return await admin.revoke_campaign(campaign_id, actor_of(request))


class MintIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    customer_ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=1000)]
    """Ids that name no customer are listed under `skipped`, with the reason."""


@post(
    "/campaigns/{campaign_id:str}/links",
    opt={"scope": Scope.DATA},
    summary="Mint personal links for customers",
    description="The same links as `prefill mint`: form, card, vCard and unsubscribe URLs, and "
    "the List-Unsubscribe header values. Unknown customers are listed under `skipped`.",
    status_code=HTTP_200_OK,
)
async def mint_links(
    admin: AdminDep,
    campaign_id: FromPath[str],
    data: Annotated[MintIn, json_body({"customer_ids": ["cust-1001", "cust-1003"]})],
    request: Request[Any, Any, Any],
) -> MintResult:
    return await admin.mint(campaign_id, data.customer_ids, actor_of(request))


ADMIN_HANDLERS = [
    list_keys,
    create_key,
    revoke_key,
    list_customers,
    read_customer,
    put_customer,
    erase_customer,
    export_customer,
    read_consent,
    change_consent,
    read_audit,
    read_funnel,
    read_funnel_csv,
    list_forms,
    read_form,
    put_form,
    delete_form,
    list_campaigns,
    read_campaign,
    put_campaign,
    delete_campaign,
    list_contacts,
    read_contact,
    put_contact,
    delete_contact,
    revoke_campaign,
    mint_links,
]

ADMIN_PATH = "/admin/api/v1"


def admin_router() -> Router:
    for handler in ADMIN_HANDLERS:
        # Every admin operation can answer these; documenting them once keeps the decorators
        # about what each operation does.
        handler.responses = {**ADMIN_ERRORS, **(handler.responses or {})}
        if "data" in inspect.signature(handler.fn).parameters:
            handler.opt["json_body"] = True
            handler.responses = {**JSON_BODY_ERRORS, **handler.responses}
    return Router(
        path=ADMIN_PATH,
        route_handlers=ADMIN_HANDLERS,
        guards=[require_scope, require_json_body],
        dependencies={"admin": Provide(provide_admin, sync_to_thread=False)},
        tags=["admin"],
        security=[{"apiKey": []}],
    )


def only_admin_on_admin_port(admin_port: int | None) -> list[DefineMiddleware]:
    """With a separate admin port, the admin API answers only there, and only it (and health)
    answers there: the public port can face the internet while the admin port does not."""
    if admin_port is None:
        return []
    return [DefineMiddleware(AdminPortMiddleware, admin_port=admin_port)]


class AdminPortMiddleware:
    def __init__(self, app: ASGIApp, admin_port: int) -> None:
        self._app = app
        self._admin_port = admin_port

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            server = scope.get("server") or ("", None)
            on_admin_port = server[1] == self._admin_port
            path: str = scope["path"]
            is_admin = path.startswith(ADMIN_PORT_ONLY)
            if is_admin != on_admin_port and not path.startswith(ADMIN_PORT_SHARED):
                raise NotFoundException()
        await self._app(scope, receive, send)


ADMIN_PORT_ONLY = ("/admin/", "/metrics")
"""Paths only the admin port serves: the admin API, its dashboard, and the metrics (campaign
volumes are nobody else's business)."""
ADMIN_PORT_SHARED = ("/health/", "/schema")
"""Paths both ports serve: probes, and the API description."""
