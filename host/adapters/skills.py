"""Agent Skills on the REST port: the skill adapters of capability files (``type: skill``).

``GET /skills`` lists them, ``/skills/{name}`` describes one, ``/skills/{name}/contents[/{file}]`` lists
and reads the files of its folder, ``/skills/{name}/download`` zips it as an Agent Skills archive
(``NAME/SKILL.md`` with front matter, and the folder's files). Each route is an ordinary route of the
REST app, so the gate (host keys, Host/Origin, limits) guards it, plus the skill adapter's own
credential as the route's item policy.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from aiohttp import web

from host.errors import CallError, StartupError
from host.gate import ROUTE_POLICIES, ItemPolicy, item_policy
from host.model import SKILLS_PATH, CallerAuth
from host.naftiko.skills import Skill, SkillFileError
from host.plugins import Catalog

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_T = TypeVar("_T")
_TITLES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Content Too Large"}


def served_skills(catalog: Catalog) -> list[Skill]:
    """The skills of every served capability file, in file order; a name used twice stops start-up."""
    skills: dict[str, Skill] = {}
    for report in catalog.files:
        for skill in [] if report.errors else report.skills:
            other = skills.get(skill.name)
            if other is not None:
                raise StartupError(
                    f"skill {skill.name!r} is declared by {other.origin} and by {skill.origin}; "
                    "skill names are one namespace on the host's REST port"
                )
            skills[skill.name] = skill
    return list(skills.values())


def add_skill_routes(app: web.Application, catalog: Catalog, environ: Mapping[str, str]) -> None:
    """The skill routes, when any served file declares a skill (the REST port stays as it was otherwise)."""
    skills = served_skills(catalog)
    if not skills:
        return
    for contributed in catalog.rest.values():
        path = contributed.item.path
        if path == SKILLS_PATH or path.startswith(SKILLS_PATH + "/"):
            raise StartupError(f"REST resource {path} from {contributed.origin} clashes with /skills routes")
    policies = app[ROUTE_POLICIES]
    credentials = {skill.caller_auth for skill in skills}
    if len(credentials) > 1:
        raise StartupError(
            "skill adapters with different authentication share one /skills catalogue: "
            + ", ".join(sorted({f"{skill.namespace} ({skill.origin})" for skill in skills}))
        )
    _guard(policies, app.router.add_get(SKILLS_PATH, _catalogue(skills)), skills[0].caller_auth, environ)
    for skill in skills:
        base = f"{SKILLS_PATH}/{skill.name}"
        routes = (
            app.router.add_get(base, _detail(skill)),
            app.router.add_get(f"{base}/contents", _contents(skill)),
            app.router.add_get(base + "/contents/{file:.+}", _file(skill)),
            app.router.add_get(f"{base}/download", _download(skill)),
        )
        for route in routes:
            _guard(policies, route, skill.caller_auth, environ, f"skill {skill.name} ({skill.origin})")


def _guard(
    policies: dict[web.AbstractRoute, ItemPolicy],
    route: web.AbstractRoute,
    auth: CallerAuth | None,
    environ: Mapping[str, str],
    origin: str = "the skills catalogue",
) -> None:
    policy = item_policy(auth, environ, origin)
    if policy is not None:
        policies[route] = policy  # the gate checks it before the handler runs


def _refusal(error: SkillFileError) -> CallError:
    refusal = CallError(error.detail)
    refusal.status, refusal.title = error.status, _TITLES.get(error.status, "Bad Request")
    refusal.slug = "skill-file" if error.status != 404 else "not-found"
    return refusal


def _catalogue(skills: list[Skill]) -> Handler:
    document = {"count": len(skills), "skills": [skill.summary() for skill in skills]}

    async def catalogue(request: web.Request) -> web.Response:
        return web.json_response(document)

    return catalogue


def _detail(skill: Skill) -> Handler:
    document = skill.detail()

    async def detail(request: web.Request) -> web.Response:
        return web.json_response(document)

    return detail


async def _off_loop(read: Callable[..., _T], *args: str) -> _T:
    """``read(*args)`` on a worker thread (it touches the disk); a refused file is the caller's error."""
    try:
        return await asyncio.to_thread(read, *args)
    except SkillFileError as exc:
        raise _refusal(exc) from None


def _contents(skill: Skill) -> Handler:
    async def contents(request: web.Request) -> web.Response:
        files = await _off_loop(skill.files)
        return web.json_response({"name": skill.name, "files": files})

    return contents


def _file(skill: Skill) -> Handler:
    async def read(request: web.Request) -> web.Response:
        # Already decoded (%2e%2e is ..): Skill.read refuses dot segments, then checks the resolved path.
        relative = request.match_info["file"]
        body, path = await _off_loop(skill.read, relative)
        kind = "text/markdown" if path.endswith(".md") else mimetypes.guess_type(path)[0]
        return web.Response(body=body, content_type=kind or "application/octet-stream", headers=_INERT)

    return read


def _download(skill: Skill) -> Handler:
    async def download(request: web.Request) -> web.Response:
        body = await _off_loop(skill.archive)
        headers = {**_INERT, "Content-Disposition": f'attachment; filename="{skill.name}.zip"'}
        return web.Response(body=body, content_type="application/zip", headers=headers)

    return download


# A skill's files are the file author's, not the host's: never rendered as active content on its origin.
_INERT = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
