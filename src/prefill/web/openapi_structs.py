"""Tell the OpenAPI document what msgspec enforces: a Struct with `forbid_unknown_fields` gets
`additionalProperties: false`, so clients (and fuzzers) know extra fields are refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

# Litestar's own Struct plugin does the real work; it is not public API, hence this one import.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition


class StrictStructSchemaPlugin(StructSchemaPlugin):
    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False  # The registered component itself.
        return schema
