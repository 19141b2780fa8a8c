"""The API 3.0 envelope: request parameters in (POST JSON or GET query), Response JSON out.

Every answer is HTTP 200 with `Content-Type: application/json` exactly: the Python SDK only looks
for an error in the body when the header is exactly that (docs/platform/api3.md#answers-and-errors),
so with a charset an error would silently read as an empty success.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from harvest.api.events import ApiRequest
from harvest.errors import InvalidParameter

CONTENT_TYPE = "application/json"
_MAX_DEPTH = 8  # GET keys like A.0.B.1: the mdp harvest actions need 2 levels at most


def error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}}


def success_body(payload: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    return {"Response": {**payload, "RequestId": request_id}}


def integration_response(body: Mapping[str, Any]) -> dict[str, Any]:
    """The API-gateway integration response SCF returns for an HTTP trigger."""
    return {
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {"Content-Type": CONTENT_TYPE},
        "body": json.dumps(body, separators=(",", ":")),
    }


# --- parameters ---------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidParameter(f"parameter {key[:64]!r} appears twice in the JSON body")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise InvalidParameter(f"the JSON body contains {name}, which is not valid JSON")


def parse_json_params(body: bytes) -> dict[str, Any]:
    """The POST body as a JSON object. An empty body is an empty object."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise InvalidParameter("the request body is not UTF-8 text") from None
    except (RecursionError, ValueError) as exc:  # JSONDecodeError is a ValueError; so is a 5000-digit int
        raise InvalidParameter(f"the request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise InvalidParameter("the request body must be a JSON object of parameters")
    return data


def _set_path(root: dict[str, Any], dotted: str, value: str) -> None:
    parts = dotted.split(".")
    if len(parts) > _MAX_DEPTH or any(not part for part in parts):
        raise InvalidParameter(f"query parameter name {dotted[:64]!r} is not a valid parameter path")
    node = root
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            prefix = ".".join(parts[: i + 1])
            raise InvalidParameter(f"query parameter {prefix[:64]!r} is given both as a value and a list")
        node = child
    if parts[-1] in node:
        raise InvalidParameter(f"query parameter {dotted[:64]!r} is given both as a value and a list")
    node[parts[-1]] = value


def _lists(node: Any) -> Any:
    """Turn every object whose keys are exactly 0..n-1 into a list, as the SDK's flattening implies."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    indices = sorted(int(key) for key in converted if key.isascii() and key.isdigit())
    if converted and indices == list(range(len(converted))):
        return [converted[str(i)] for i in indices]
    return converted


def parse_query_params(query: Mapping[str, str | list[str] | bool]) -> dict[str, Any]:
    """Rebuild parameters the SDK flattened for GET (`IDs.0=a&IDs.1=b` -> {"IDs": ["a", "b"]}).

    Every value arrives as a string; the action's parameter parser converts integers.
    """
    root: dict[str, Any] = {}
    for key, value in query.items():
        if isinstance(value, list):
            raise InvalidParameter(f"query parameter {key[:64]!r} is given more than once")
        _set_path(root, key, "" if value is True else str(value))
    rebuilt: dict[str, Any] = {key: _lists(value) for key, value in root.items()}
    return rebuilt


def read_flat_params(request: ApiRequest) -> dict[str, str]:
    """A v1 request's parameters, names as sent (`IDs.0`): the GET query, or the POST form body."""
    if request.method == "GET":
        pairs = [(key, "" if value is True else value) for key, value in request.query.items()]
    else:
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameter("the request body is not UTF-8 text") from None
        pairs = list(parse_qsl(text, keep_blank_values=True))
    flat: dict[str, str] = {}
    for key, value in pairs:
        if isinstance(value, list) or key in flat:
            raise InvalidParameter(f"parameter {key[:64]!r} is given more than once")
        flat[key] = str(value)
    return flat


def read_params(request: ApiRequest) -> tuple[dict[str, Any], bool]:
    """The request's parameters, and whether they came as strings from a query (GET)."""
    if request.method == "GET":
        return parse_query_params(request.query), True
    return parse_json_params(request.body), False
