"""任务管理 work orders and 行业插件 industry plugins over HTTP: parse, call, respond."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response

from cangyun.apispec import Body, Page, Query, Reply, operation
from cangyun.fields import Code, Name, Timestamp
from cangyun.httpapi import json_response, page
from cloud_api.operations import plugins, tasks
from cloud_api.platform.auth import caller, client_ip, engine, feature, requires

bp = Blueprint("operations", __name__)

TaskKind = Literal[tasks.KINDS]  # type: ignore[valid-type]
TaskStatus = Literal[tasks.STATUSES]  # type: ignore[valid-type]


class NewTask(Body):
    title: Name(200)
    kind: TaskKind
    assignee: Name(200) | None = None
    warehouse: Code | None = None
    due_at: Timestamp | None = None


class TaskChange(Body):
    title: Name(200) | None = None
    kind: TaskKind | None = None
    assignee: Name(200) | None = None
    warehouse: Code | None = None
    due_at: Timestamp | None = None
    status: TaskStatus | None = None


class Task(Reply):
    """A work order"""

    id: int
    kind: TaskKind
    title: str
    assignee: str | None
    warehouse: str | None
    status: TaskStatus
    due_at: str | None
    created_at: str
    updated_at: str


class TaskFilter(Query):
    status: TaskStatus | None = None


class Plugin(Reply):
    """An industry plugin and whether the tenant has it on"""

    code: str
    name: str
    description: str
    enabled: bool
    enabled_at: str | None


def _tasks() -> tasks.TenantTasks:
    return tasks.TenantTasks(engine(), caller().tenant_id)


def _plugins() -> plugins.TenantPlugins:
    return plugins.TenantPlugins(engine(), caller().tenant_id)


@bp.get("/tasks")
@requires("tasks:read")
@feature("task_management")
@operation("Tasks (任务管理), newest first", query=TaskFilter, responses={200: Page[Task]})
def list_tasks(query: TaskFilter) -> Response:
    items = _tasks().list(query.status)
    return json_response(page(len(items), items, None))


@bp.post("/tasks")
@requires("tasks:write")
@feature("task_management")
@operation("Create a task", body=NewTask, responses={201: Task, 422: "unknown warehouse"})
def create_task(body: NewTask) -> Response:
    task = _tasks().create(body.model_dump(exclude_none=True), caller(), client_ip())
    return json_response(task, 201)


@bp.patch("/tasks/<int:task_id>")
@requires("tasks:write")
@feature("task_management")
@operation(
    "Change a task: only the fields sent",
    body=TaskChange,
    responses={200: Task, 404: "no such task", 422: "unknown warehouse"},
)
def update_task(task_id: int, body: TaskChange) -> Response:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return json_response(_tasks().update(task_id, changes, caller(), client_ip()))


@bp.get("/plugins")
@requires("plugins:manage")
@feature("industry_plugins")
@operation("Industry plugins (行业插件) and which are enabled", responses={200: Page[Plugin]})
def list_plugins() -> Response:
    items = _plugins().list()
    return json_response(page(len(items), items, None))


@bp.post("/plugins/<code>/enable")
@requires("plugins:manage")
@feature("industry_plugins")
@operation("Enable a plugin", responses={200: Plugin, 404: "unknown plugin"})
def enable_plugin(code: str) -> Response:
    return json_response(_plugins().enable(code, caller(), client_ip()))


@bp.post("/plugins/<code>/disable")
@requires("plugins:manage")
@feature("industry_plugins")
@operation("Disable a plugin", responses={200: Plugin, 404: "unknown plugin"})
def disable_plugin(code: str) -> Response:
    return json_response(_plugins().disable(code, caller(), client_ip()))
