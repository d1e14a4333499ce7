"""Request bodies the routes validate themselves, described in the OpenAPI document.

Routes that read their body by hand (size limits, gzip, one validation pass) still publish its
JSON Schema: `json_body(Model)` gives the route's `openapi_extra`, and the models' nested
definitions are added to `components.schemas` by `add_components`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

REF = "#/components/schemas/{model}"
_COMPONENTS: dict[str, Any] = {}


def schema_ref(model: type[BaseModel]) -> dict[str, Any]:
    """Register the model (and what it nests) as components; return a reference to it."""
    schema = model.model_json_schema(ref_template=REF)
    for name, definition in schema.pop("$defs", {}).items():
        _COMPONENTS.setdefault(name, definition)
    _COMPONENTS.setdefault(model.__name__, schema)
    return {"$ref": REF.format(model=model.__name__)}


def json_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema_ref(model)}},
        }
    }


def add_components(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in _COMPONENTS.items():
        schemas.setdefault(name, definition)
