"""A small fake of Google Compute Engine's REST API and Google's OAuth token endpoint, enough
for `google.cloud.compute_v1` (REST transport) and `google.oauth2.service_account` to run
against it unchanged: they only need the endpoint and the key's `token_uri` pointed here.

It keeps instances and firewall rules in memory, records every insert body and token
assertion for the tests to inspect, and can be told to refuse the next call the way Google
does. Like GCE, it gives an inserted instance an ephemeral external IP (`natIP`) on each
access config, stores a firewall rule's network as a full URL and fills in its defaults.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "fake-token"
_BASE = "/compute/v1/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)"
_INSTANCES = re.compile(_BASE + "/instances$")
_INSTANCE = re.compile(_BASE + "/instances/(?P<name>[^/]+)$")
_OPERATION = re.compile(_BASE + "/operations/(?P<op>[^/]+?)(?P<wait>/wait)?$")
_LABEL_FILTER = re.compile(r"labels\.([A-Za-z0-9_-]+):\*")
_GLOBAL = "/compute/v1/projects/(?P<project>[^/]+)/global"
_FIREWALLS = re.compile(_GLOBAL + "/firewalls$")
_FIREWALL = re.compile(_GLOBAL + "/firewalls/(?P<name>[^/]+)$")
_GLOBAL_OPERATION = re.compile(_GLOBAL + "/operations/(?P<op>[^/]+?)(?P<wait>/wait)?$")
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# The networks the fake project has (a new project has only its default one).
_NETWORKS = ("default",)


@dataclass
class Refusal:
    status: int
    message: str
    reason: str

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            }
        }


@dataclass
class FakeGce:
    project: str = "forgeline-test"
    zone: str = "us-central1-a"
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    inserts: list[dict[str, Any]] = field(default_factory=list)  # request bodies, in order
    firewalls: dict[str, dict[str, Any]] = field(default_factory=dict)
    firewall_writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (verb, body)
    token_requests: list[dict[str, str]] = field(default_factory=list)  # form fields
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    page_size: int = 500  # the most instances one list page holds
    token: str = TOKEN  # what the token endpoint hands out (the API accepts only TOKEN)
    reject_tokens: bool = False  # answer the token endpoint with invalid_grant
    deny: bool = False  # answer every API call 403, as for a role-less service account
    # "RUNNING": the client has to wait on the operation (instance and firewall inserts)
    insert_operation_status: str = "DONE"
    insert_operation_error: dict[str, Any] | None = None  # a DONE operation that failed
    port: int = 0
    _refusals: list[Refusal] = field(default_factory=list)
    _operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def refuse_next(self, status: int, message: str, reason: str) -> None:
        """Answer the next API call (not the token endpoint) with this Google error."""
        self._refusals.append(Refusal(status, message, reason))

    def refuse_next_for_quota(self) -> None:
        self.refuse_next(
            403,
            "Quota 'NVIDIA_L4_GPUS' exceeded.  Limit: 0.0 in region us-central1.",
            "quotaExceeded",
        )

    def set_status(self, name: str, status: str) -> None:
        with self._lock:
            self.instances[name]["status"] = status

    def add_instance(self, name: str, labels: dict[str, str], status: str = "RUNNING") -> None:
        with self._lock:
            self.instances[name] = self._instance(name, {"name": name, "labels": labels}, status)

    # --- the HTTP side --------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if path == "/token" and method == "POST":
            return self._token(body)
        with self._lock:
            self.requests.append((method, path))
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, _error(401, "Request had invalid authentication credentials.", "")
        if self.deny:
            return 403, _error(
                403,
                f"Required 'compute.instances.list' permission for 'projects/{self.project}'",
                "forbidden",
            )
        with self._lock:
            if self._refusals:
                refusal = self._refusals.pop(0)
                return refusal.status, refusal.body()
            return self._compute(method, path, query, body)

    def _token(self, body: bytes) -> tuple[int, dict[str, Any]]:
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        with self._lock:
            self.token_requests.append(form)
        if self.reject_tokens:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        return 200, {"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"}

    def _compute(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        for glob in (_FIREWALLS, _FIREWALL, _GLOBAL_OPERATION):
            found = glob.match(path)
            if found:
                return self._global(glob, found, method, body)
        for pattern in (_INSTANCES, _INSTANCE, _OPERATION):
            match = pattern.match(path)
            if match:
                break
        else:
            return 404, _error(404, f"The requested URL {path} was not found.", "notFound")
        project, zone = match["project"], match["zone"]
        if (project, zone) != (self.project, self.zone):
            where = f"projects/{project}/zones/{zone}"
            return 404, _error(404, f"The resource '{where}' was not found", "notFound")
        if pattern is _INSTANCES and method == "GET":
            return 200, self._list(query)
        if pattern is _INSTANCES and method == "POST":
            return self._insert(json.loads(body))
        if pattern is _INSTANCE:
            name = match["name"]
            if name not in self.instances:
                link = f"projects/{project}/zones/{zone}/instances/{name}"
                return 404, _error(404, f"The resource '{link}' was not found", "notFound")
            if method == "GET":
                return 200, self.instances[name]
            if method == "DELETE":
                del self.instances[name]
                return 200, self._operation("delete", name)
        if pattern is _OPERATION and match["op"] in self._operations:
            operation = self._operations[match["op"]]
            operation["status"] = "DONE"  # a get or a wait finds it finished
            return 200, operation
        return 404, _error(404, f"No {method} here.", "notFound")

    def _global(
        self, pattern: re.Pattern[str], match: re.Match[str], method: str, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Firewall rules and global operations: project-wide, no zone in the path."""
        if match["project"] != self.project:
            return 404, _error(404, f"The resource 'projects/{match['project']}' was not found",
                               "notFound")  # fmt: skip
        if pattern is _FIREWALLS and method == "POST":
            return self._insert_firewall(json.loads(body))
        if pattern is _FIREWALLS and method == "GET":
            return 200, {"kind": "compute#firewallList", "id": "list",
                         "items": list(self.firewalls.values())}  # fmt: skip
        if pattern is _FIREWALL:
            name = match["name"]
            if name not in self.firewalls:
                link = f"projects/{self.project}/global/firewalls/{name}"
                return 404, _error(404, f"The resource '{link}' was not found", "notFound")
            if method == "GET":
                return 200, self.firewalls[name]
            if method == "PATCH":
                return self._patch_firewall(name, json.loads(body))
            if method == "DELETE":
                del self.firewalls[name]
                return 200, self._global_operation("delete", name)
        if pattern is _GLOBAL_OPERATION and match["op"] in self._operations:
            operation = self._operations[match["op"]]
            operation["status"] = "DONE"
            return 200, operation
        return 404, _error(404, f"No {method} here.", "notFound")

    def _insert_firewall(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.firewall_writes.append(("insert", body))
        name = str(body.get("name", ""))
        if not _NAME.match(name):
            return 400, _error(400, f"Invalid value for field 'resource.name': '{name}'.",
                               "invalid")  # fmt: skip
        if name in self.firewalls:
            link = f"projects/{self.project}/global/firewalls/{name}"
            return 409, _error(409, f"The resource '{link}' already exists", "alreadyExists")
        problem = self._firewall_problem(body)
        if problem is not None:
            return problem
        self.firewalls[name] = self._firewall(body)
        return 200, self._global_operation("insert", name, self.insert_operation_status)

    def _patch_firewall(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """PATCH semantics: the fields sent replace the stored ones, the others stay."""
        self.firewall_writes.append(("patch", body))
        merged = {**self.firewalls[name], **body, "name": name}
        problem = self._firewall_problem(merged)
        if problem is not None:
            return problem
        self.firewalls[name] = self._firewall(merged)
        return 200, self._global_operation("patch", name)

    def _firewall_problem(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        if not body.get("allowed") and not body.get("denied"):
            return 400, _error(400, "Invalid value for field 'resource.allowed': ''. Must "
                               "specify at least one rule.", "invalid")  # fmt: skip
        network = str(body.get("network") or "global/networks/default").rsplit("/", 1)[-1]
        if network not in _NETWORKS:
            link = f"projects/{self.project}/global/networks/{network}"
            return 404, _error(404, f"The resource '{link}' was not found", "notFound")
        return None

    def _firewall(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"]
        network = str(body.get("network") or "global/networks/default").rsplit("/", 1)[-1]
        return {
            "direction": "INGRESS",
            "priority": 1000,
            "disabled": False,
            "logConfig": {"enable": False},
            **({} if body.get("destinationRanges") else {"sourceRanges": ["0.0.0.0/0"]}),
            **body,
            "kind": "compute#firewall",
            "id": body.get("id") or str(next(self._ids)),
            "network": f"{self._root()}/global/networks/{network}",
            "selfLink": f"{self._root()}/global/firewalls/{name}",
        }

    def _global_operation(self, kind: str, target: str, status: str = "DONE") -> dict[str, Any]:
        """An operation on a firewall: global, where instance operations are zonal."""
        return self._record_operation(kind, f"global/firewalls/{target}", "global", status)

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        found = list(self.instances.values())
        wanted = _LABEL_FILTER.fullmatch(query.get("filter", ""))
        if wanted:
            found = [i for i in found if wanted[1] in i.get("labels", {})]
        start = int(query.get("pageToken") or 0)
        size = min(int(query.get("maxResults") or 500), self.page_size)
        page: dict[str, Any] = {"kind": "compute#instanceList", "id": "list"}
        if found[start : start + size]:  # GCE leaves "items" out of an empty page
            page["items"] = found[start : start + size]
        if start + size < len(found):
            page["nextPageToken"] = str(start + size)
        return page

    def _insert(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.inserts.append(body)
        name = body["name"]
        if name in self.instances:
            link = f"projects/{self.project}/zones/{self.zone}/instances/{name}"
            return 409, _error(409, f"The resource '{link}' already exists", "alreadyExists")
        operation = self._operation("insert", name, self.insert_operation_status)
        if self.insert_operation_error is not None:
            operation.update(self.insert_operation_error, status="DONE")
        else:
            self.instances[name] = self._instance(name, body, "PROVISIONING")
        return 200, operation

    def _instance(self, name: str, body: dict[str, Any], status: str) -> dict[str, Any]:
        interfaces = [
            {
                **interface,
                "accessConfigs": [
                    {**access, "natIP": f"203.0.113.{next(self._ids) % 250 + 1}"}
                    for access in interface.get("accessConfigs", [])
                ],
            }
            for interface in body.get("networkInterfaces", [])
        ]
        return {
            **body,
            **({"networkInterfaces": interfaces} if interfaces else {}),
            "kind": "compute#instance",
            "id": str(next(self._ids)),
            "status": status,
            "zone": f"{self._root()}/zones/{self.zone}",
            "selfLink": f"{self._root()}/zones/{self.zone}/instances/{name}",
        }

    def _operation(self, kind: str, target: str, status: str = "DONE") -> dict[str, Any]:
        zone = f"zones/{self.zone}"
        return self._record_operation(kind, f"{zone}/instances/{target}", zone, status)

    def _record_operation(self, kind: str, target: str, scope: str, status: str) -> dict[str, Any]:
        name = f"operation-{next(self._ids)}-{kind}"
        operation = {
            "kind": "compute#operation",
            "id": str(next(self._ids)),
            "name": name,
            "operationType": kind,
            "status": status,
            "progress": 100 if status == "DONE" else 0,
            "targetLink": f"{self._root()}/{target}",
            "selfLink": f"{self._root()}/{scope}/operations/{name}",
        }
        if scope != "global":
            operation["zone"] = f"{self._root()}/{scope}"
        self._operations[name] = operation
        return dict(operation)

    def _root(self) -> str:
        return f"{self.url}/compute/v1/projects/{self.project}"


def _error(status: int, message: str, reason: str) -> dict[str, Any]:
    return Refusal(status, message, reason).body()


def _handler(fake: FakeGce) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = fake.handle(self.command, parts.path, query, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output quiet

    return Handler


@contextmanager
def run_fake_gce(**options: Any) -> Iterator[FakeGce]:
    fake = FakeGce(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fake-gce", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
