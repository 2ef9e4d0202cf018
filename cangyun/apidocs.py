"""``GET /api/docs``: the OpenAPI document as a readable page, for people.

Rendered on the server from the same document ``/api/v1/openapi.json`` serves, so the page
cannot drift from the API. No JavaScript and nothing fetched from elsewhere: edge boxes run on
a LAN without internet, and integrators read the page from there too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, render_template_string

METHODS = ("get", "post", "put", "patch", "delete")

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
 overflow:auto;font-size:.85rem}
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
{% if op.params %}<table><tr><th>parameter</th><th>in</th><th></th></tr>
{% for p in op.params %}<tr><td><code>{{ p.name }}</code>{% if p.required %} *{% endif %}</td>
<td>{{ p["in"] }}</td><td>{{ p.description or "" }}</td></tr>{% endfor %}</table>{% endif %}
{% for media, schema in op.bodies %}<p>request body <code>{{ media }}</code></p>
<pre>{{ schema }}</pre>{% endfor %}
<table><tr><th>status</th><th>meaning</th></tr>
{% for status, text in op.responses %}<tr><td>{{ status }}</td><td>{{ text }}</td></tr>
{% endfor %}</table></details>
{% endfor %}{% endfor %}
</body></html>"""


def _groups(spec: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Operations grouped by their first tag (or the path's first segment), in spec order."""
    import json

    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            segments = [s for s in path.split("/") if s and s not in ("api", "v1")]
            tag = (op.get("tags") or [segments[0] if segments else "api"])[0]
            bodies = [
                (media, json.dumps(content.get("schema", {}), ensure_ascii=False, indent=1))
                for media, content in op.get("requestBody", {}).get("content", {}).items()
            ]
            groups.setdefault(tag, []).append(
                {
                    "method": method,
                    "path": path,
                    "summary": op.get("summary", ""),
                    "public": op.get("security") == [],
                    "params": op.get("parameters", []),
                    "bodies": bodies,
                    "responses": [
                        (status, response.get("description", ""))
                        for status, response in op.get("responses", {}).items()
                    ],
                }
            )
    return list(groups.items())


def register(app: Flask, spec: Callable[[], dict[str, Any]], spec_url: str) -> None:
    """Serve ``/api/docs`` from ``spec()`` (built per request: it is cheap and stays exact)."""

    @app.get("/api/docs")
    def api_docs() -> Response:
        document = spec()
        html = render_template_string(
            _PAGE, info=document["info"], groups=_groups(document), spec_url=spec_url
        )
        return Response(html, mimetype="text/html")


__all__ = ["register"]
