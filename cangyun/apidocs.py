"""``GET /api/docs``: the OpenAPI document as a readable page, for people.

Rendered on the server from the same document ``/api/v1/openapi.json`` serves, so the page
cannot drift from the API. No JavaScript and nothing fetched from elsewhere: edge boxes run on
a LAN without internet, and integrators read the page from there too.

The document names its models once, under ``components/schemas``, and points at them with
``$ref``; the page writes each body and answer out in full, with the model's name, so a reader
sees every field where it is used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, render_template_string

METHODS = ("get", "post", "put", "patch", "delete")
REF_PREFIX = "#/components/schemas/"
# Keywords whose value maps names to schemas (a property called "title" is not a title).
_NAMED_SCHEMAS = ("properties", "patternProperties", "$defs", "dependentSchemas")

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ info.title }} · 接口文档 API reference</title>
<style>
body{font:15px/1.5 "Noto Sans CJK SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;
 margin:0 auto;max-width:960px;padding:1.5rem;color:#1d2430}
h1{font-size:1.5rem;margin:.2rem 0} h2{margin-top:2rem;border-bottom:2px solid #dde3ea}
nav a{margin-right:.8rem} code,.path{font-family:ui-monospace,Menlo,Consolas,monospace}
details{border:1px solid #dde3ea;border-radius:6px;margin:.5rem 0;padding:.4rem .7rem}
summary{cursor:pointer} .m{display:inline-block;min-width:4.2rem;font-weight:700;
 text-transform:uppercase;font-size:.8rem} .get{color:#176f2c}.post{color:#1f5fbf}
 .put,.patch{color:#a45f00}.delete{color:#b3261e} .pub{color:#6b7785;font-size:.8rem}
table{border-collapse:collapse;margin:.4rem 0} td,th{border-bottom:1px solid #eef1f4;
 padding:.2rem .6rem;text-align:left;vertical-align:top} pre{background:#f5f7fa;padding:.5rem;
 overflow:auto;font-size:.85rem} .model{font-weight:600;color:#1f5fbf}
details.answer{border:0;padding:0;margin:.2rem 0}
</style></head><body>
<h1>{{ info.title }} <small>{{ info.version }}</small></h1>
<p>{{ info.description }}</p>
<p>接口说明由 <a href="{{ spec_url }}">{{ spec_url }}</a> 生成 · Generated from the OpenAPI
document. 认证 Authentication: <code>Authorization: Bearer &lt;token&gt;</code> unless marked
public. 错误 Errors: <code>{"error": {"code", "message", "details"}}</code>.</p>
<nav>{% for tag, _ in groups %}<a href="#{{ tag }}">{{ tag }}</a>{% endfor %}</nav>
{% for tag, ops in groups %}
<h2 id="{{ tag }}">{{ tag }}</h2>
{% for op in ops %}
<details><summary><span class="m {{ op.method }}">{{ op.method }}</span>
<span class="path">{{ op.path }}</span> — {{ op.summary }}
{% if op.public %}<span class="pub">public 无需认证</span>{% endif %}</summary>
{% if op.params %}<table><tr><th>parameter</th><th>in</th><th></th><th>schema</th></tr>
{% for p in op.params %}<tr><td><code>{{ p.name }}</code>{% if p.required %} *{% endif %}</td>
<td>{{ p["in"] }}</td><td>{{ p.description or "" }}</td><td><code>{{ p.rule }}</code></td></tr>
{% endfor %}</table>{% endif %}
{% for body in op.bodies %}<p>request body <code>{{ body.media }}</code>
{% if body.model %}<span class="model">{{ body.model }}</span>{% endif %}</p>
<pre class="schema">{{ body.schema }}</pre>{% endfor %}
<table><tr><th>status</th><th>meaning</th></tr>
{% for r in op.responses %}<tr><td>{{ r.status }}</td><td>{{ r.text }}
{% for body in r.bodies %}<details class="answer"><summary><code>{{ body.media }}</code>
{% if body.model %}<span class="model">{{ body.model }}</span>{% endif %}</summary>
<pre class="schema">{{ body.schema }}</pre></details>{% endfor %}</td></tr>
{% endfor %}</table></details>
{% endfor %}{% endfor %}
</body></html>"""


def _groups(spec: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Operations grouped by their first tag (or the path's first segment), in spec order."""
    components = spec.get("components", {}).get("schemas", {})
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            segments = [s for s in path.split("/") if s and s not in ("api", "v1")]
            tag = (op.get("tags") or [segments[0] if segments else "api"])[0]
            groups.setdefault(tag, []).append(
                {
                    "method": method,
                    "path": path,
                    "summary": op.get("summary", ""),
                    "public": op.get("security") == [],
                    "params": _params(op.get("parameters", []), components),
                    "bodies": _bodies(op.get("requestBody", {}), components),
                    "responses": [
                        {
                            "status": status,
                            "text": response.get("description", ""),
                            # Error answers all share the one error body, said once above.
                            "bodies": _bodies(response, components) if _success(status) else [],
                        }
                        for status, response in op.get("responses", {}).items()
                    ],
                }
            )
    return list(groups.items())


def _success(status: str) -> bool:
    return status.isdigit() and int(status) < 400


def _params(params: list[dict[str, Any]], components: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Parameters with their schema as one compact line (type, bounds, default, enum)."""
    return [
        p | {"rule": json.dumps(resolve(p.get("schema", {}), components), ensure_ascii=False)}
        for p in params
    ]


def _bodies(holder: Mapping[str, Any], components: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each media type of a request body or an answer, its schema written out in full."""
    out = []
    for media, content in holder.get("content", {}).items():
        schema = content.get("schema", {})
        ref = schema.get("$ref", "") if isinstance(schema, Mapping) else ""
        out.append(
            {
                "media": media,
                "model": ref.removeprefix(REF_PREFIX) if ref.startswith(REF_PREFIX) else "",
                "schema": json.dumps(resolve(schema, components), ensure_ascii=False, indent=1),
            }
        )
    return out


def resolve(
    schema: Any, components: Mapping[str, Any], within: frozenset[str] = frozenset()
) -> Any:
    """``schema`` with every ``$ref`` to ``components/schemas`` replaced by what it names.

    Titles go (pydantic titles every field with its own name). A model that contains itself
    is written out once and then left as its ``$ref``, so the page stays finite.
    """
    if isinstance(schema, list):
        return [resolve(item, components, within) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        name = ref.removeprefix(REF_PREFIX)
        if name in within or name not in components:
            return dict(schema)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        target = resolve(components[name], components, within | {name})
        return {**target, **resolve(rest, components, within)} if rest else target
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _NAMED_SCHEMAS and isinstance(value, Mapping):
            out[key] = {name: resolve(sub, components, within) for name, sub in value.items()}
        else:
            out[key] = resolve(value, components, within)
    return out


def register(app: Flask, spec: Callable[[], dict[str, Any]], spec_url: str) -> None:
    """Serve ``/api/docs`` from ``spec()`` (built per request: it is cheap and stays exact)."""

    @app.get("/api/docs")
    def api_docs() -> Response:
        document = spec()
        html = render_template_string(
            _PAGE, info=document["info"], groups=_groups(document), spec_url=spec_url
        )
        return Response(html, mimetype="text/html")


__all__ = ["register", "resolve"]
