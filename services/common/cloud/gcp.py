"""Google Compute Engine instances in the user's own project, through the official
`google.cloud.compute_v1` client (REST transport), authenticated as one service account.

Every Google error is turned into a ForgelineError with a stable code and a sentence the
user can act on; the service-account key never appears in a message or a log line.
"""

from __future__ import annotations

import contextlib
import re
import string
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.auth import exceptions as auth_exceptions
from google.cloud import compute_v1
from google.cloud.compute_v1.services.firewalls.transports.rest import FirewallsRestTransport
from google.cloud.compute_v1.services.global_operations.transports.rest import (
    GlobalOperationsRestTransport,
)
from google.cloud.compute_v1.services.instances.transports.rest import InstancesRestTransport
from google.cloud.compute_v1.services.zone_operations.transports.rest import (
    ZoneOperationsRestTransport,
)
from google.oauth2 import service_account

from services.common.cloud.instances import (
    JOB_TAG,
    OWNER_TAG,
    ROLE_TAG,
    InstanceState,
    LaunchRequest,
    TaggedInstance,
)
from services.common.errors import ForgelineError, InvalidInput, PermissionDenied, Unavailable
from services.common.logging import get_logger

log = get_logger(__name__)

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
DEFAULT_HOST = "compute.googleapis.com"

# Google's Deep Learning VM image family with CUDA 12.4 and PyTorch 2.4 preinstalled, so a
# node only has to pip-install the trainer. A family (not a fixed image) always resolves to
# its newest image. Families are retired as CUDA/PyTorch move on: list the current ones with
# `gcloud compute images list --project deeplearning-platform-release --no-standard-images`.
DEFAULT_IMAGE = "projects/deeplearning-platform-release/global/images/family/pytorch-2-4-cu124"

# Every instance joins the project's default network, and a serving node's firewall rule is
# made on it.
NETWORK = "global/networks/default"
# Instances whose ports must be reachable carry a network tag named after their firewall rule,
# so each rule admits exactly the instances that asked for it.
FIREWALL_PREFIX = "forgeline-serving-"

# Machine families that come with their GPUs built in (A100, H100/H200, L4, B200): asking for
# guest accelerators on them is an error. Every other family (N1 above all) needs them.
GPU_BUNDLED_FAMILIES = ("a2-", "a3-", "a4-", "g2-")

# The platform's GPU names → Compute Engine accelerator types.
ACCELERATOR_TYPES = {
    "NVIDIA L4": "nvidia-l4",
    "NVIDIA T4": "nvidia-tesla-t4",
    "NVIDIA V100": "nvidia-tesla-v100",
    "NVIDIA A100 40GB": "nvidia-tesla-a100",
    "NVIDIA A100 80GB": "nvidia-a100-80gb",
    "NVIDIA H100 80GB": "nvidia-h100-80gb",
}

# How long launch waits for the insert operation. Capacity and quota refusals arrive in the
# operation, not in the insert response, so waiting is how the user learns of them; past
# this the instance is left to come up and the caller watches it with state().
LAUNCH_WAIT_S = 180.0
# One request's time limit; the library's default (600 s) would hang a worker for too long.
CALL_TIMEOUT_S = 60.0
CHECK_TIMEOUT_S = 20.0
# Reads (get, list) are retried on Google's transient errors, for a minute rather than the
# library's ten.
READ_RETRY = api_retry.Retry(
    initial=0.5,
    maximum=10.0,
    multiplier=2.0,
    predicate=api_retry.if_exception_type(
        api_exceptions.ServiceUnavailable, api_exceptions.DeadlineExceeded
    ),
    timeout=60.0,
)

_STATES: dict[str, InstanceState] = {
    "PROVISIONING": "starting",
    "STAGING": "starting",
    "RUNNING": "running",
    # REPAIRING: Google is fixing the host; the instance still exists and is still billed.
    "REPAIRING": "running",
    "STOPPING": "stopped",
    "STOPPED": "stopped",
    "SUSPENDING": "stopped",
    "SUSPENDED": "stopped",
    # TERMINATED is GCE for "stopped": the disk (and the bill for it) remain until deleted.
    "TERMINATED": "stopped",
    "DEPROVISIONING": "stopped",
}

_KEY_HELP = (
    "Create a new JSON key for the service account in the Google Cloud console "
    "(IAM & Admin → Service Accounts → Keys) and paste the whole file."
)


# --- Pure helpers -------------------------------------------------------------------------


def instance_name(request: LaunchRequest) -> str:
    """A valid GCE name: lowercase letters, digits and '-', starting with a letter and not
    ending with '-', at most 63 characters."""
    raw = request.name or f"forgeline-{request.job_id[:20]}"
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if not name or name[0] not in string.ascii_lowercase:
        name = f"forgeline-{name}"
    return name[:63].rstrip("-")


def accelerator_type(gpu: str) -> str:
    """The Compute Engine accelerator type for a GPU name ("NVIDIA L4" → "nvidia-l4")."""
    wanted = " ".join(gpu.split()).upper()
    for name, accelerator in ACCELERATOR_TYPES.items():
        if name.upper() == wanted:
            return accelerator
    if gpu.strip().lower().startswith("nvidia-"):
        return gpu.strip().lower()  # already a GCE accelerator type
    raise InvalidInput(
        "cloud_gpu_unknown",
        f"Google Cloud has no GPU called {gpu!r} that Forgeline knows how to request. "
        f"Choose one of: {', '.join(ACCELERATOR_TYPES)}.",
    )


def bundles_gpus(machine_type: str) -> bool:
    return machine_type.lower().startswith(GPU_BUNDLED_FAMILIES)


def label_value(value: str) -> str:
    """GCP label values allow lowercase letters, digits, '_' and '-', up to 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


def label_key(key: str) -> str:
    """Label keys follow the value rules and must also start with a lowercase letter."""
    cleaned = label_value(key)
    if not cleaned or cleaned[0] not in string.ascii_lowercase:
        cleaned = f"x-{cleaned}"
    return cleaned[:63]


def instance_labels(request: LaunchRequest) -> dict[str, str]:
    labels = {label_key(key): label_value(value) for key, value in request.labels.items()}
    # Set last so that no caller label can hide an instance from the reaper.
    labels[JOB_TAG] = label_value(request.job_id)
    labels[OWNER_TAG] = label_value(request.owner_id)
    return labels


def firewall_name(ports: tuple[int, ...]) -> str:
    """One rule (and network tag) per set of ports, like AWS's security group: "forgeline-
    serving-8000". GCE names allow 63 characters; a serving node opens one port."""
    return (FIREWALL_PREFIX + "-".join(str(p) for p in sorted(set(ports))))[:63].rstrip("-")


def firewall_rule(ports: tuple[int, ...], source_ranges: tuple[str, ...]) -> compute_v1.Firewall:
    """The ingress rule opening `ports` (TCP) to the instances tagged with its name."""
    name = firewall_name(ports)
    return compute_v1.Firewall(
        name=name,
        description="Forgeline serving nodes: the model API, behind a per-deployment key",
        network=NETWORK,
        direction="INGRESS",
        priority=1000,
        allowed=[
            compute_v1.Allowed(I_p_protocol="tcp", ports=[str(p) for p in sorted(set(ports))])
        ],
        source_ranges=sorted(source_ranges),
        target_tags=[name],
    )


def rule_matches(current: compute_v1.Firewall, wanted: compute_v1.Firewall) -> bool:
    """Whether an existing rule already admits exactly what `wanted` does: the operator may
    have narrowed the source ranges since it was made, and then it is updated."""

    def allowed(rule: compute_v1.Firewall) -> set[tuple[str, tuple[str, ...]]]:
        return {(a.I_p_protocol.lower(), tuple(sorted(a.ports))) for a in rule.allowed}

    return (
        not current.disabled
        and current.direction in ("", "INGRESS")  # GCE's default direction is INGRESS
        and current.network.endswith(NETWORK.split("/", 1)[1])
        and sorted(current.source_ranges) == sorted(wanted.source_ranges)
        and sorted(current.target_tags) == sorted(wanted.target_tags)
        and allowed(current) == allowed(wanted)
        and not current.denied
    )


def instance_state(status: str) -> InstanceState:
    # An unknown new status still means the instance exists (and may cost money): never "gone".
    return _STATES.get(status.upper(), "starting")


# --- Errors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Failure:
    """A refusal from Google, whether it came as an HTTP error or in a finished operation."""

    status: int
    reasons: frozenset[str]  # "quotaExceeded", "ZONE_RESOURCE_POOL_EXHAUSTED", ...
    message: str  # Google's own sentence, without the request line

    @classmethod
    def from_api(cls, exc: api_exceptions.GoogleAPICallError) -> _Failure:
        reasons = {str(e.get("reason", "")) for e in exc.errors if isinstance(e, Mapping)}
        if exc.reason:
            reasons.add(exc.reason)
        messages = [
            str(e["message"]) for e in exc.errors if isinstance(e, Mapping) and e.get("message")
        ]
        # api_core prefixes REST messages with "METHOD URL: "; the user needs neither.
        message = messages[0] if messages else re.sub(r"^[A-Z]+ \S+: ", "", exc.message or "")
        return cls(int(exc.code or 0), frozenset(reasons - {""}), message)

    @classmethod
    def from_operation(cls, op: compute_v1.Operation) -> _Failure | None:
        errors = list(op.error.errors) if op.error else []
        if not errors and not op.http_error_status_code:
            return None
        reasons = frozenset(e.code for e in errors if e.code)
        message = "; ".join(e.message for e in errors if e.message) or op.http_error_message
        return cls(op.http_error_status_code or 0, reasons, message)

    def mentions(self, *words: str) -> bool:
        text = " ".join([*self.reasons, self.message]).lower()
        return any(word.lower() in text for word in words)


def _transport_error(exc: Exception) -> ForgelineError | None:
    """Errors that mean the same whatever was being asked: no network, a bad key."""
    if isinstance(exc, auth_exceptions.TransportError | requests.exceptions.RequestException):
        return Unavailable(
            "cloud_unreachable",
            "Forgeline could not reach Google Cloud. Check this server's internet connection "
            "and try again.",
        )
    if isinstance(exc, auth_exceptions.RefreshError | api_exceptions.Unauthorized):
        return InvalidInput(
            "cloud_credentials_invalid",
            "Google Cloud did not accept this service-account key: it may have been deleted, "
            f"disabled, or belong to a deleted service account. {_KEY_HELP}",
        )
    return None


def _common_error(failure: _Failure) -> ForgelineError:
    if failure.status == 403:
        if failure.mentions("accessNotConfigured", "SERVICE_DISABLED", "has not been used"):
            return PermissionDenied(
                "cloud_access_denied",
                "The Compute Engine API is not turned on for this Google Cloud project. "
                "Enable it in the Google Cloud console (APIs & Services), wait a few minutes, "
                "and try again.",
            )
        return PermissionDenied(
            "cloud_access_denied",
            "This service account is not allowed to manage Compute Engine instances in this "
            "project. Give it the 'Compute Instance Admin (v1)' and 'Service Account User' "
            "roles in the Google Cloud console (IAM & Admin), then try again.",
        )
    if failure.status == 429:
        return Unavailable(
            "cloud_rate_limited",
            "Google Cloud is asking Forgeline to slow down. Please try again in a minute.",
            retry_after=60,
        )
    # The same catch-all code as the AWS client: Google's own sentence, briefly.
    reason = failure.message[:300] or "no reason given"
    return Unavailable("cloud_error", f"Google Cloud refused the request: {reason}")


def _launch_error(failure: _Failure, zone: str) -> ForgelineError:
    if failure.status == 429 or failure.mentions("quota"):
        return InvalidInput(
            "cloud_quota_exceeded",
            "Your Google Cloud project has run out of quota for this machine (usually GPUs) in "
            f"{zone}. Ask Google Cloud for more GPU quota (IAM & Admin → Quotas), or choose a "
            "smaller machine or another zone.",
        )
    if failure.status == 503 or failure.mentions("RESOURCE_POOL_EXHAUSTED", "STOCKOUT"):
        return Unavailable(
            "cloud_capacity_unavailable",
            f"Google Cloud has no free machines of this type in {zone} right now. Try again "
            "later, or choose another zone or GPU.",
        )
    if failure.status == 404 and failure.mentions("/images/"):
        return InvalidInput(
            "cloud_image_not_found",
            f"Google Cloud could not find the boot image for the machine: {failure.message}",
        )
    if failure.status == 404:
        return InvalidInput(
            "cloud_resource_not_found",
            "Google Cloud could not find something this machine needs (the machine type, GPU "
            f"type, boot image or network) in {zone}: {failure.message}",
        )
    return _common_error(failure)


def _firewall_error(failure: _Failure, rule: str) -> ForgelineError:
    if failure.status == 403 and not failure.mentions(
        "accessNotConfigured", "SERVICE_DISABLED", "has not been used"
    ):
        return PermissionDenied(
            "cloud_access_denied",
            "This service account may not manage firewall rules, which a deployment needs to "
            "open its model port. Give it the 'Compute Security Admin' role in the Google Cloud "
            f"console (IAM & Admin), or have an administrator create the rule {rule!r} as "
            "Forgeline would, then try again.",
        )
    return _common_error(failure)


def _is_already_exists(failure: _Failure) -> bool:
    return failure.status == 409 or failure.mentions("alreadyExists", "ALREADY_EXISTS")


# --- The client ---------------------------------------------------------------------------


# Where a service-account key exchanges its signed assertion for a token. The key file names
# it (token_uri), and a user writes the key file: anything else would have the platform POST
# to an address of the user's choosing, our own network included.
GOOGLE_TOKEN_URIS = frozenset(
    {
        "https://oauth2.googleapis.com/token",
        "https://accounts.google.com/o/oauth2/token",
        "https://www.googleapis.com/oauth2/v4/token",
    }
)


def _check_token_uri(info: Any, api_endpoint: str | None) -> None:
    """Google's token endpoint only; or, where the operator points the platform at another
    Compute endpoint (TRAINER_GCP_API_ENDPOINT: a test fake, a private Google endpoint), the
    same scheme and host as that endpoint (the operator's, so its port is not checked)."""
    uri = info.get("token_uri") if isinstance(info, dict) else None
    if uri is None:
        return  # a key without it is refused as incomplete below
    if uri in GOOGLE_TOKEN_URIS:
        return
    if api_endpoint and isinstance(uri, str):
        given, operators = urlsplit(uri), urlsplit(api_endpoint)
        if (given.scheme, given.hostname) == (operators.scheme, operators.hostname):
            return
    raise InvalidInput(
        "cloud_credentials_invalid",
        "This key's token_uri is not Google's: a Google Cloud key exchanges its tokens at "
        "https://oauth2.googleapis.com/token. " + _KEY_HELP,
    )


class GceInstances:
    """InstanceApi for Google Compute Engine: one service account's project, one zone."""

    provider = "gcp"

    def __init__(
        self,
        service_account_info: dict[str, Any],
        zone: str,
        *,
        api_endpoint: str | None = None,
        image: str | None = None,
    ) -> None:
        self.zone = zone
        self.image = image or DEFAULT_IMAGE
        self.launch_wait_s = LAUNCH_WAIT_S
        _check_token_uri(service_account_info, api_endpoint)
        try:
            self.project = str(service_account_info["project_id"])
            from_info = service_account.Credentials.from_service_account_info
            credentials = from_info(service_account_info, scopes=SCOPES)  # type: ignore[no-untyped-call]
        except (KeyError, ValueError, TypeError, AttributeError):
            # Neither the parser's message nor its traceback is kept: either may quote the key.
            raise InvalidInput(
                "cloud_credentials_invalid",
                f"This is not a complete Google Cloud service-account key. {_KEY_HELP}",
            ) from None
        host, scheme = _split_endpoint(api_endpoint)
        # Built by hand rather than through client_options so the scheme can be http (the
        # test fake) and so the operations client below talks to the same endpoint: the
        # library's own extended-operation poller always goes to compute.googleapis.com.
        self._instances = compute_v1.InstancesClient(
            transport=InstancesRestTransport(host=host, credentials=credentials, url_scheme=scheme)
        )
        self._operations = compute_v1.ZoneOperationsClient(
            transport=ZoneOperationsRestTransport(
                host=host, credentials=credentials, url_scheme=scheme
            )
        )
        # Firewall rules are global resources, and so are the operations that make them.
        self._firewalls = compute_v1.FirewallsClient(
            transport=FirewallsRestTransport(host=host, credentials=credentials, url_scheme=scheme)
        )
        self._global_operations = compute_v1.GlobalOperationsClient(
            transport=GlobalOperationsRestTransport(
                host=host, credentials=credentials, url_scheme=scheme
            )
        )

    def check(self) -> None:
        with _google_errors(self._check_error):
            self._instances.list(
                request=compute_v1.ListInstancesRequest(
                    project=self.project, zone=self.zone, max_results=1
                ),
                retry=None,  # the user is waiting; one honest answer beats a minute of retries
                timeout=CHECK_TIMEOUT_S,
            )

    def _check_error(self, failure: _Failure) -> ForgelineError:
        # The request names nothing but the project and the zone, so a 400 or 404 is theirs.
        if failure.status in (400, 404):
            return InvalidInput(
                "cloud_zone_not_found",
                f"Google Cloud has no zone {self.zone!r} in project {self.project!r}. Check the "
                "zone name (for example 'us-central1-a') and that the project exists.",
            )
        return _common_error(failure)

    def launch(self, request: LaunchRequest) -> str:
        name = instance_name(request)
        network_tags = []
        if request.open_ports:
            network_tags.append(self.open_ports(request.open_ports, request.open_to))
        body = self._instance_body(name, request, network_tags)
        with _google_errors(self._launch_error):
            try:
                # insert_unary returns the plain Operation; insert() would wrap it in a
                # poller that always polls compute.googleapis.com, whatever the endpoint.
                op = self._instances.insert_unary(
                    project=self.project, zone=self.zone, instance_resource=body,
                    timeout=CALL_TIMEOUT_S,
                )  # fmt: skip
            except api_exceptions.Conflict:
                return name  # relaunch after a worker crash: the instance is already ours
            op = self._wait(op)
        failure = _Failure.from_operation(op)
        if failure is not None and not _is_already_exists(failure):
            raise self._launch_error(failure)
        return name

    def _launch_error(self, failure: _Failure) -> ForgelineError:
        return _launch_error(failure, self.zone)

    def open_ports(self, ports: tuple[int, ...], source_ranges: tuple[str, ...]) -> str:
        """Make sure the project's firewall admits TCP on `ports` from `source_ranges` to
        instances tagged with the rule's name, and return that name (the tag). Made once per
        project; updated when the operator's source ranges changed; a rule made by a
        concurrent launch is fine."""
        wanted = firewall_rule(ports, source_ranges)
        name = wanted.name

        def refusal(failure: _Failure) -> ForgelineError:
            return _firewall_error(failure, name)

        with _google_errors(refusal):
            try:
                current = self._firewalls.get(
                    project=self.project, firewall=name, retry=READ_RETRY, timeout=CALL_TIMEOUT_S
                )
            except api_exceptions.NotFound:
                current = None
            if current is not None and rule_matches(current, wanted):
                return name
            if current is None:
                try:
                    op = self._firewalls.insert_unary(
                        project=self.project, firewall_resource=wanted, timeout=CALL_TIMEOUT_S
                    )
                except api_exceptions.Conflict:
                    return name  # another launch made it a moment ago
            else:
                op = self._firewalls.patch_unary(
                    project=self.project, firewall=name, firewall_resource=wanted,
                    timeout=CALL_TIMEOUT_S,
                )  # fmt: skip
            op = self._wait_global(op)
        failure = _Failure.from_operation(op)
        if failure is not None and not _is_already_exists(failure):
            raise refusal(failure)
        log.info("gce firewall rule made", name=name, updated=current is not None)
        return name

    def state(self, ref: str) -> InstanceState:
        with _google_errors(_common_error):
            try:
                instance = self._instances.get(
                    project=self.project, zone=self.zone, instance=ref,
                    retry=READ_RETRY, timeout=CALL_TIMEOUT_S,
                )  # fmt: skip
            except api_exceptions.NotFound:
                return "gone"
        return instance_state(instance.status)

    def address(self, ref: str) -> str:
        with _google_errors(_common_error):
            try:
                instance = self._instances.get(
                    project=self.project, zone=self.zone, instance=ref,
                    retry=READ_RETRY, timeout=CALL_TIMEOUT_S,
                )  # fmt: skip
            except api_exceptions.NotFound:
                return ""
        for interface in instance.network_interfaces:
            for access in interface.access_configs:
                if access.nat_i_p:
                    return str(access.nat_i_p)
        return ""

    def terminate(self, ref: str) -> None:
        # Not waited for: deletion takes a minute or two, and state() shows it going.
        with _google_errors(_common_error), contextlib.suppress(api_exceptions.NotFound):
            self._instances.delete_unary(
                project=self.project, zone=self.zone, instance=ref, timeout=CALL_TIMEOUT_S
            )

    def tagged(self) -> list[TaggedInstance]:
        with _google_errors(_common_error):
            pager = self._instances.list(
                request=compute_v1.ListInstancesRequest(
                    project=self.project,
                    zone=self.zone,
                    filter=f"labels.{JOB_TAG}:*",
                    max_results=500,  # the most GCE returns per page
                ),
                retry=READ_RETRY,
                timeout=CALL_TIMEOUT_S,
            )
            found = [
                TaggedInstance(
                    ref=instance.name,
                    job_id=instance.labels[JOB_TAG],
                    state=instance_state(instance.status),
                    owner_id=instance.labels.get(OWNER_TAG, ""),
                    role=instance.labels.get(ROLE_TAG, ""),
                )
                for instance in pager  # the pager fetches the following pages as it goes
                if JOB_TAG in instance.labels
            ]
        return [instance for instance in found if instance.state != "gone"]

    def _instance_body(
        self, name: str, request: LaunchRequest, network_tags: list[str]
    ) -> compute_v1.Instance:
        zone = self.zone
        accelerators = []
        if request.gpus > 0 and not bundles_gpus(request.instance_type):
            accelerators.append(
                compute_v1.AcceleratorConfig(
                    accelerator_type=f"zones/{zone}/acceleratorTypes/"
                    + accelerator_type(request.gpu),
                    accelerator_count=request.gpus,
                )
            )
        return compute_v1.Instance(
            name=name,
            machine_type=f"zones/{zone}/machineTypes/{request.instance_type}",
            guest_accelerators=accelerators,
            # GPUs cannot live-migrate, so GCE insists the instance stops for host
            # maintenance; a restarted node would rerun the startup script, so it doesn't.
            scheduling=compute_v1.Scheduling(
                on_host_maintenance="TERMINATE", automatic_restart=False
            ),
            disks=[
                compute_v1.AttachedDisk(
                    boot=True,
                    auto_delete=True,  # deleting the instance must stop every charge
                    initialize_params=compute_v1.AttachedDiskInitializeParams(
                        source_image=self.image,
                        disk_size_gb=request.disk_gb,
                        # pd-standard reads model weights at a crawl.
                        disk_type=f"zones/{zone}/diskTypes/pd-balanced",
                    ),
                )
            ],
            # The node calls back to the platform and downloads models: it needs the internet.
            network_interfaces=[
                compute_v1.NetworkInterface(
                    network=NETWORK,
                    access_configs=[
                        compute_v1.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")
                    ],
                )
            ],
            metadata=compute_v1.Metadata(
                items=[
                    compute_v1.Items(key="startup-script", value=request.startup_script),
                    # Deep Learning VM images install the NVIDIA driver on first boot.
                    compute_v1.Items(key="install-nvidia-driver", value="True"),
                ]
            ),
            labels=instance_labels(request),
            # What firewall rules target; none (unset) for a node that opens no port.
            tags=compute_v1.Tags(items=network_tags) if network_tags else None,
        )

    def _wait(self, op: compute_v1.Operation) -> compute_v1.Operation:
        """Wait (server-side, up to two minutes a call) for a zone operation to finish."""
        deadline = time.monotonic() + self.launch_wait_s
        while not op.done and time.monotonic() < deadline:
            op = self._operations.wait(
                project=self.project, zone=self.zone, operation=op.name,
                timeout=CALL_TIMEOUT_S * 3,
            )  # fmt: skip
        return op

    def _wait_global(self, op: compute_v1.Operation) -> compute_v1.Operation:
        """The same for a global operation (a firewall rule's), on our own endpoint too."""
        deadline = time.monotonic() + self.launch_wait_s
        while not op.done and time.monotonic() < deadline:
            op = self._global_operations.wait(
                project=self.project, operation=op.name, timeout=CALL_TIMEOUT_S * 3
            )
        return op


@contextlib.contextmanager
def _google_errors(on_refusal: Callable[[_Failure], ForgelineError]) -> Iterator[None]:
    """Turn what the Google libraries raise into ForgelineErrors; let our own bugs through."""
    try:
        yield
    except Exception as exc:
        error = _transport_error(exc)
        if error is None and isinstance(exc, api_exceptions.GoogleAPICallError):
            error = on_refusal(_Failure.from_api(exc))
        if error is None:
            raise
        raise error from exc


def _split_endpoint(api_endpoint: str | None) -> tuple[str, str]:
    """Host and scheme: "http://127.0.0.1:8080" → ("127.0.0.1:8080", "http"); none → https."""
    if not api_endpoint:
        return DEFAULT_HOST, "https"
    if "://" not in api_endpoint:
        return api_endpoint.rstrip("/"), "https"
    parts = urlsplit(api_endpoint)
    return parts.netloc, parts.scheme
