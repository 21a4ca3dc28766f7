"""The HTTP face of the store: Kubernetes API paths, discovery, watches and error statuses, on aiohttp."""

import asyncio
import json
from collections import Counter

import yaml
from aiohttp import web

from . import table
from .errors import ApiError
from .selectors import Selector
from .store import Store

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
VERSION_INFO = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-emulated", "gitCommit": "", "gitTreeState": "",
                "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"}
DEFAULT_WATCH_SECONDS = 1800
IDLE_CHECK_SECONDS = 2.0
APPLY_PATCH = "application/apply-patch+yaml"


def _json(body, status=200):
    return web.Response(status=status, body=json.dumps(body, separators=(",", ":")).encode(),
                        content_type="application/json")


def _error(exc):
    return _json(exc.status(), exc.code)


class Emulator:
    """One server: its store, the requests it served, and the aiohttp application."""

    def __init__(self, history_limit=1000, bookmark_seconds=60.0):
        self.store = Store(history_limit=history_limit)
        self.bookmark_seconds = bookmark_seconds
        self.counts = Counter()  # (verb, resource) -> write requests
        self.requests = []  # (verb, group, resource, subresource, namespace)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request):
        try:
            return await self._dispatch(request)
        except ApiError as exc:
            return _error(exc)

    async def _dispatch(self, request):
        parts = [p for p in request.path.split("/") if p]
        if request.method == "GET":
            document = self._discovery(parts)
            if document is not None:
                return document
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        return await self._resource(request, group, version, rest)

    # --- discovery ----------------------------------------------------------------------------------------

    def _discovery(self, parts):
        registry = self.store.registry
        if parts in ([], ["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if parts == ["version"]:
            return _json(VERSION_INFO)
        if parts == ["api"]:
            return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if parts == ["api", "v1"]:
            return _json(registry.resource_list("", "v1"))
        groups = {g: v for g, v in registry.group_versions().items() if g}
        if parts == ["apis"]:
            return _json({"kind": "APIGroupList", "apiVersion": "v1",
                          "groups": [self._group(name, versions) for name, versions in sorted(groups.items())]})
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return _json({"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], groups[parts[1]])})
        if len(parts) == 3 and parts[0] == "apis":
            document = registry.resource_list(parts[1], parts[2])
            if document is None:
                raise ApiError(404, "the server could not find the requested resource")
            return _json(document)
        return None

    @staticmethod
    def _group(name, versions):
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    # --- resources ----------------------------------------------------------------------------------------

    def _route(self, group, version, rest):
        """(resource type, namespace, name, subresource) for the path after /api/v1 or /apis/g/v."""
        registry = self.store.registry
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            rt = registry.lookup(group, version, rest[2])
            if rt is not None and rt.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        rt = registry.lookup(group, version, rest[0])
        if rt is None or (namespace == "" and rt.namespaced and len(rest) > 1):
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource and subresource not in rt.subresources():
            raise ApiError(404, "the server could not find the requested resource")
        return rt, namespace, name, subresource

    async def _resource(self, request, group, version, rest):
        rt, namespace, name, subresource = self._route(group, version, rest)
        query = request.query
        verb = self._verb(request.method, name, query)
        resource = f"{rt.plural}/{subresource}" if subresource else rt.plural
        self.requests.append((verb, group, resource, subresource, namespace))
        if verb in WRITE_VERBS:
            self.counts[(verb, resource)] += 1
        if query.get("dryRun"):
            raise ApiError(400, "dryRun is not supported by the emulator")
        store = self.store
        strict = query.get("fieldValidation") == "Strict"
        if verb == "watch":
            return await self._watch(request, rt, version, namespace, query)
        if verb == "list":
            return self._list(request, rt, version, namespace, query)
        if verb == "deletecollection":
            return await self._delete_collection(request, rt, version, namespace, query)
        if verb == "create":
            if rt.namespaced and not namespace:
                raise ApiError(405, "the server does not allow this method on the requested resource")
            obj = store.create(rt, version, namespace, await self._body(request), strict)
            return _json(store.view(rt, version, obj), 201)
        if subresource == "scale":
            if verb == "get":
                return _json(store.scale_of(rt, store.get(rt, namespace, name)))
            content_type = request.content_type if verb == "patch" else None
            return _json(store.write_scale(rt, version, namespace, name, content_type, await self._body(request)))
        if verb == "get":
            return self._render(request, rt, version, [store.get(rt, namespace, name)], single=True)
        if verb == "update":
            obj = store.update(rt, version, namespace, name, await self._body(request), strict, subresource)
        elif verb == "patch":
            body = await self._body(request)
            if request.content_type == APPLY_PATCH and not subresource and store.find(rt, namespace, name) is None:
                # Server-side apply creates what does not exist yet.
                obj = store.create(rt, version, namespace, body, strict)
                return _json(store.view(rt, version, obj), 201)
            obj = store.patch(rt, version, namespace, name, request.content_type, body, strict, subresource)
        else:
            obj, finished = store.delete(rt, namespace, name, await self._delete_options(request))
            return _json(store.view(rt, version, obj), 200 if finished else 202)
        return _json(store.view(rt, version, obj))

    @staticmethod
    def _verb(method, name, query):
        collection = name is None
        if method == "GET":
            if query.get("watch") in ("true", "1"):
                return "watch"
            return "list" if collection else "get"
        verbs = {("POST", True): "create", ("PUT", False): "update", ("PATCH", False): "patch",
                 ("DELETE", False): "delete", ("DELETE", True): "deletecollection"}
        verb = verbs.get((method, collection))
        if verb is None:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        return verb

    @staticmethod
    async def _body(request):
        if "protobuf" in request.content_type:
            # JSON and YAML only; a client that can fall back to JSON does so on 415, as with a real server.
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                                f"include: application/json, application/yaml")
        text = await request.text()
        try:
            if request.content_type.endswith("yaml"):
                return yaml.safe_load(text)
            return json.loads(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, f"the body of the request could not be decoded: {exc}") from None

    async def _delete_options(self, request):
        options = await self._body(request) if request.can_read_body else {}
        options = options if isinstance(options, dict) else {}
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        return options

    def _list(self, request, rt, version, namespace, query):
        selector = Selector(query.get("labelSelector", ""), query.get("fieldSelector", ""))
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise ApiError(400, "limit must be an integer") from None
        items, rv, token, remaining = self.store.list(rt, namespace, selector, limit, query.get("continue"))
        return self._render(request, rt, version, items, rv=rv, token=token, remaining=remaining)

    def _render(self, request, rt, version, items, single=False, rv=None, token=None, remaining=0):
        """A list (or one object) as JSON, or as a meta.k8s.io Table when the client asks for one."""
        store = self.store
        items = [store.view(rt, version, obj) for obj in items]
        if table.wants_table(request.headers.get("Accept", "")):
            return _json(table.build(rt, version, items, rv))
        if single:
            return _json(items[0])
        metadata = {"resourceVersion": rv}
        if token:
            metadata.update({"continue": token, "remainingItemCount": remaining})
        return _json({"kind": f"{rt.kind}List", "apiVersion": rt.api_version(version), "metadata": metadata,
                      "items": items})

    async def _delete_collection(self, request, rt, version, namespace, query):
        options = await self._delete_options(request)
        selector = Selector(query.get("labelSelector", ""), query.get("fieldSelector", ""))
        items, rv, _, _ = self.store.list(rt, namespace, selector)
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            if self.store.find(rt, meta.get("namespace", ""), meta["name"]) is not None:
                deleted.append(self.store.delete(rt, meta.get("namespace", ""), meta["name"], options)[0])
        return _json({"kind": f"{rt.kind}List", "apiVersion": rt.api_version(version),
                      "metadata": {"resourceVersion": str(self.store.resource_version)},
                      "items": [self.store.view(rt, version, obj) for obj in deleted]})

    # --- watch --------------------------------------------------------------------------------------------

    async def _watch(self, request, rt, version, namespace, query):
        selector = Selector(query.get("labelSelector", ""), query.get("fieldSelector", ""))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            watcher = self.store.watch(rt, namespace, selector, query.get("resourceVersion"),
                                       query.get("sendInitialEvents") == "true")
        except ApiError as exc:
            if exc.code != 410:
                raise
            # The real server answers a too-old version with an ERROR event in a successful stream.
            await response.prepare(request)
            await response.write(self._line("ERROR", exc.status()))
            return response
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if bookmarks and query.get("sendInitialEvents") == "true":
            watcher.queue.put_nowait(("BOOKMARK", self._bookmark(rt, version, initial_end=True)))
        await response.prepare(request)
        try:
            next_bookmark = loop.time() + self.bookmark_seconds
            while (remaining := deadline - loop.time()) > 0:
                try:
                    # Wake up now and then to notice a client that went away while nothing happened.
                    async with asyncio.timeout(min(remaining, next_bookmark - loop.time(), IDLE_CHECK_SECONDS)):
                        event = await watcher.queue.get()
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    if loop.time() >= next_bookmark:
                        next_bookmark = loop.time() + self.bookmark_seconds
                        if bookmarks:
                            await response.write(self._line("BOOKMARK", self._bookmark(rt, version)))
                    continue
                if event is None:
                    break
                event_type, obj = event
                await response.write(self._line(event_type, self.store.view(rt, version, obj)))
        except ConnectionResetError:
            pass  # the client closed the stream
        finally:
            self.store.unwatch(watcher)
        return response

    def _bookmark(self, rt, version, initial_end=False):
        metadata = {"resourceVersion": str(self.store.resource_version)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version(version), "metadata": metadata}

    @staticmethod
    def _line(event_type, obj):
        return (json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n").encode()
