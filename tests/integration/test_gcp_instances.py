"""GceInstances against a fake Compute Engine: the real `google.cloud.compute_v1` REST client
and the real service-account token flow, with the request bodies asserted on the wire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.cloud.gcp import DEFAULT_IMAGE, GceInstances
from services.common.cloud.instances import JOB_TAG, OWNER_TAG, LaunchRequest
from services.common.errors import ForgelineError, InvalidInput, PermissionDenied, Unavailable
from tests.servers import free_port
from tests.servers.gce import FakeGce, run_fake_gce

ZONE = "us-central1-a"
CLIENT_EMAIL = "forgeline@forgeline-test.iam.gserviceaccount.com"
SCRIPT = "#!/bin/bash\nset -euo pipefail\necho 'hello from the node'\n"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake() -> Iterator[FakeGce]:
    with run_fake_gce(zone=ZONE) as fake:
        yield fake


def key_json(private_key: rsa.RSAPrivateKey, token_uri: str, **changes: Any) -> dict[str, Any]:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "forgeline-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    info.update(changes)
    return info


def gce(fake: FakeGce, private_key: rsa.RSAPrivateKey, **changes: Any) -> GceInstances:
    return GceInstances(
        key_json(private_key, fake.token_uri, **changes), ZONE, api_endpoint=fake.url
    )


def request(job_id: str = "0f" * 16, **changes: Any) -> LaunchRequest:
    fields: dict[str, Any] = {
        "job_id": job_id,
        "owner_id": "Owner-42",
        "instance_type": "n1-standard-8",
        "gpu": "NVIDIA T4",
        "gpus": 1,
        "startup_script": SCRIPT,
        "disk_gb": 150,
    }
    fields.update(changes)
    return LaunchRequest(**fields)


def raises(code: str, call: Any) -> ForgelineError:
    with pytest.raises(ForgelineError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_launch_sends_the_expected_instance(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    job_id = "a1b2c3d4" * 4
    name = gce(fake, private_key).launch(request(job_id, labels={"Team": "Research"}))

    assert name == f"forgeline-{job_id[:20]}"
    (body,) = fake.inserts
    assert body["name"] == name
    assert body["machineType"] == f"zones/{ZONE}/machineTypes/n1-standard-8"
    assert body["guestAccelerators"] == [
        {"acceleratorType": f"zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4", "acceleratorCount": 1}
    ]
    assert body["scheduling"] == {"onHostMaintenance": "TERMINATE", "automaticRestart": False}
    (disk,) = body["disks"]
    assert disk["boot"] is True and disk["autoDelete"] is True
    assert disk["initializeParams"]["sourceImage"] == DEFAULT_IMAGE
    assert int(disk["initializeParams"]["diskSizeGb"]) == 150  # int64 travels as a string
    (nic,) = body["networkInterfaces"]
    assert nic["network"] == "global/networks/default"
    assert nic["accessConfigs"] == [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}]
    metadata = {item["key"]: item["value"] for item in body["metadata"]["items"]}
    assert metadata == {"startup-script": SCRIPT, "install-nvidia-driver": "True"}
    assert body["labels"] == {JOB_TAG: job_id, OWNER_TAG: "owner-42", "team": "research"}
    assert fake.instances[name]["status"] == "PROVISIONING"


def test_machine_families_with_bundled_gpus_get_no_accelerator(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    instances = gce(fake, private_key, image="unused")
    instances.launch(request("1" * 32, instance_type="g2-standard-8", gpu="NVIDIA L4"))
    instances.launch(request("2" * 32, instance_type="n1-standard-8", gpu="NVIDIA T4", gpus=2))

    bundled, attached = fake.inserts
    assert "guestAccelerators" not in bundled
    assert bundled["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert attached["guestAccelerators"] == [
        {"acceleratorType": f"zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4", "acceleratorCount": 2}
    ]


def test_a_custom_image_is_used(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    image = "projects/my-project/global/images/my-trainer"
    GceInstances(
        key_json(private_key, fake.token_uri), ZONE, api_endpoint=fake.url, image=image
    ).launch(request())
    assert fake.inserts[0]["disks"][0]["initializeParams"]["sourceImage"] == image


def test_the_token_request_carries_a_jwt_signed_by_the_service_account(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    gce(fake, private_key).check()

    (token_request,) = fake.token_requests
    assert token_request["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        token_request["assertion"],
        private_key.public_key(),
        algorithms=["RS256"],
        # google-auth always names Google's token endpoint here, wherever it posts the JWT.
        audience="https://oauth2.googleapis.com/token",
    )
    assert claims["iss"] == CLIENT_EMAIL
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert jwt.get_unverified_header(token_request["assertion"])["kid"] == "0123456789abcdef"


def test_state_follows_the_instance(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    instances = gce(fake, private_key)
    name = instances.launch(request())

    assert instances.state(name) == "starting"
    for status, state in [
        ("STAGING", "starting"),
        ("RUNNING", "running"),
        ("STOPPING", "stopped"),
        ("SUSPENDED", "stopped"),
        ("TERMINATED", "stopped"),  # GCE's word for stopped, not deleted
    ]:
        fake.set_status(name, status)
        assert instances.state(name) == state, status
    assert instances.state("forgeline-never-launched") == "gone"


def test_terminate_deletes_and_a_second_terminate_is_fine(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    instances = gce(fake, private_key)
    name = instances.launch(request())

    instances.terminate(name)
    assert name not in fake.instances
    assert ("DELETE", f"/compute/v1/projects/forgeline-test/zones/{ZONE}/instances/{name}") in (
        fake.requests
    )
    instances.terminate(name)
    assert instances.state(name) == "gone"


def test_tagged_lists_only_labelled_instances_across_pages(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.page_size = 2  # five tagged instances take three pages
    instances = gce(fake, private_key)
    for job in range(5):
        instances.launch(request(f"{job:02d}" + "a" * 30))
    fake.add_instance("someone-elses-vm", labels={"team": "web"})
    fake.add_instance("forgeline-stopped", labels={JOB_TAG: "f" * 32}, status="TERMINATED")

    found = {t.ref: (t.job_id, t.state) for t in instances.tagged()}

    assert "someone-elses-vm" not in found
    assert found["forgeline-stopped"] == ("f" * 32, "stopped")
    assert len(found) == 6
    assert found["forgeline-01" + "a" * 18] == ("01" + "a" * 30, "starting")
    lists = [path for method, path in fake.requests if method == "GET" and path.endswith("es")]
    assert len(lists) == 3  # 7 instances, 6 of them tagged: pages of 2, 2 and 2


def test_relaunch_of_an_existing_instance_returns_its_name(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    instances = gce(fake, private_key)
    first = instances.launch(request())
    assert instances.launch(request()) == first
    assert len(fake.inserts) == 2 and len(fake.instances) == 1


def test_launch_waits_for_a_running_operation(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.insert_operation_status = "RUNNING"
    name = gce(fake, private_key).launch(request())
    assert name in fake.instances
    assert any(path.endswith("/wait") for method, path in fake.requests if method == "POST")


def test_check_passes_with_good_credentials(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    gce(fake, private_key).check()
    (list_call,) = [r for r in fake.requests if r[0] == "GET"]
    assert list_call[1] == f"/compute/v1/projects/forgeline-test/zones/{ZONE}/instances"


def test_check_reports_a_service_account_without_access(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.deny = True
    error = raises("cloud_access_denied", gce(fake, private_key).check)
    assert isinstance(error, PermissionDenied)
    assert "Compute Instance Admin" in error.message


def test_check_reports_the_compute_api_turned_off(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.refuse_next(
        403,
        "Compute Engine API has not been used in project 1234 before or it is disabled.",
        "accessNotConfigured",
    )
    error = raises("cloud_access_denied", gce(fake, private_key).check)
    assert "Enable it" in error.message


@pytest.mark.parametrize(
    "changes",
    [
        {"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"},
        {"client_email": None, "token_uri": None},
        {"project_id": None},
    ],
    ids=["garbled-key", "missing-fields", "no-project"],
)
def test_a_malformed_key_file_is_invalid_input(
    fake: FakeGce, private_key: rsa.RSAPrivateKey, changes: dict[str, Any]
) -> None:
    info = key_json(private_key, fake.token_uri)
    for field, value in changes.items():
        if value is None:
            del info[field]
        else:
            info[field] = value
    with pytest.raises(InvalidInput) as caught:
        GceInstances(info, ZONE, api_endpoint=fake.url)
    assert caught.value.code == "cloud_credentials_invalid"
    assert "PRIVATE KEY" not in caught.value.message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "token_uri",
    [
        "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
        "http://127.0.0.1:6379/",
        "https://oauth2.googleapis.com.evil.example/token",
        "http://oauth2.googleapis.com/token",  # Google's host, but in the clear
    ],
)
def test_a_key_whose_token_uri_is_not_googles_is_refused(
    fake: FakeGce, private_key: rsa.RSAPrivateKey, token_uri: str
) -> None:
    # Hostile: a user pastes a key file whose token_uri points inside our network; the
    # platform would POST a signed assertion there each time it needs a token. As deployed
    # (no TRAINER_GCP_API_ENDPOINT), only Google's own token endpoint is accepted.
    with pytest.raises(InvalidInput) as caught:
        GceInstances(key_json(private_key, token_uri), ZONE)
    assert caught.value.code == "cloud_credentials_invalid"
    assert "oauth2.googleapis.com" in caught.value.message
    with pytest.raises(InvalidInput):
        GceInstances(key_json(private_key, fake.token_uri), ZONE)
    GceInstances(key_json(private_key, "https://oauth2.googleapis.com/token"), ZONE)
    # With an operator's endpoint, the token may also come from that endpoint's host.
    if "127.0.0.1" not in token_uri:
        with pytest.raises(InvalidInput):
            GceInstances(key_json(private_key, token_uri), ZONE, api_endpoint=fake.url)


def test_check_reports_a_key_google_rejects(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    fake.reject_tokens = True
    error = raises("cloud_credentials_invalid", gce(fake, private_key).check)
    assert isinstance(error, InvalidInput)
    assert "PRIVATE KEY" not in error.message


def test_check_reports_a_token_the_api_refuses(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.token = "a-token-from-elsewhere"
    raises("cloud_credentials_invalid", gce(fake, private_key).check)


def test_check_reports_an_unknown_zone(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    instances = GceInstances(
        key_json(private_key, fake.token_uri), "mars-north1-z", api_endpoint=fake.url
    )
    error = raises("cloud_zone_not_found", instances.check)
    assert "mars-north1-z" in error.message


def test_check_reports_google_unreachable(private_key: rsa.RSAPrivateKey) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    everything_down = GceInstances(key_json(private_key, f"{dead}/token"), ZONE, api_endpoint=dead)
    error = raises("cloud_unreachable", everything_down.check)
    assert isinstance(error, Unavailable)

    with run_fake_gce(zone=ZONE) as fake:  # tokens come, but the API is down
        api_down = GceInstances(key_json(private_key, fake.token_uri), ZONE, api_endpoint=dead)
        raises("cloud_unreachable", api_down.check)


def test_launch_reports_quota(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    fake.refuse_next_for_quota()
    error = raises("cloud_quota_exceeded", lambda: gce(fake, private_key).launch(request()))
    assert isinstance(error, InvalidInput)
    assert "quota" in error.message
    assert not fake.instances


def test_launch_reports_quota_found_by_the_operation(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.insert_operation_error = {
        "error": {"errors": [{"code": "QUOTA_EXCEEDED", "message": "Quota 'GPUS_ALL_REGIONS'"}]},
        "httpErrorStatusCode": 403,
        "httpErrorMessage": "FORBIDDEN",
    }
    raises("cloud_quota_exceeded", lambda: gce(fake, private_key).launch(request()))


def test_launch_reports_no_capacity(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    fake.insert_operation_error = {
        "error": {
            "errors": [
                {
                    "code": "ZONE_RESOURCE_POOL_EXHAUSTED",
                    "message": f"The zone '{ZONE}' does not have enough resources available.",
                }
            ]
        },
        "httpErrorStatusCode": 503,
        "httpErrorMessage": "SERVICE UNAVAILABLE",
    }
    error = raises("cloud_capacity_unavailable", lambda: gce(fake, private_key).launch(request()))
    assert isinstance(error, Unavailable)


def test_launch_reports_access_denied(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    fake.refuse_next(
        403, "Required 'compute.instances.create' permission for 'projects/x'", "forbidden"
    )
    raises("cloud_access_denied", lambda: gce(fake, private_key).launch(request()))


def test_launch_rejects_an_unknown_gpu(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    raises("cloud_gpu_unknown", lambda: gce(fake, private_key).launch(request(gpu="Voodoo 2")))
    assert not fake.inserts


def test_launch_reports_a_missing_boot_image(fake: FakeGce, private_key: rsa.RSAPrivateKey) -> None:
    image = "projects/deeplearning-platform-release/global/images/family/retired-family"
    fake.refuse_next(404, f"The resource '{image}' was not found", "notFound")
    error = raises("cloud_image_not_found", lambda: gce(fake, private_key).launch(request()))
    assert image in error.message


def test_an_unexpected_refusal_passes_on_googles_reason(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.refuse_next(400, "Invalid value for field 'resource.name'.", "invalid")
    error = raises("cloud_error", lambda: gce(fake, private_key).launch(request()))
    assert error.message.endswith("Invalid value for field 'resource.name'.")
    assert "http://" not in error.message  # api_core's "POST <url>: " prefix is dropped


# --- serving nodes: the firewall rule for their port, their address ---------------------------


def test_a_serving_node_opens_its_port_with_one_firewall_rule(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.insert_operation_status = "RUNNING"  # the rule's global operation is waited on
    instances = gce(fake, private_key)
    serving = request(open_ports=(8000,), open_to=("203.0.113.0/24",), name="fl-serving-1")
    name = instances.launch(serving)

    rule = fake.firewalls["forgeline-serving-8000"]
    assert rule["allowed"] == [{"IPProtocol": "tcp", "ports": ["8000"]}]
    assert rule["sourceRanges"] == ["203.0.113.0/24"]
    assert rule["targetTags"] == ["forgeline-serving-8000"]
    assert rule["direction"] == "INGRESS"
    assert rule["network"].endswith("/global/networks/default")
    assert fake.inserts[0]["tags"] == {"items": ["forgeline-serving-8000"]}
    assert fake.instances[name]["tags"]["items"] == ["forgeline-serving-8000"]
    waits = [p for m, p in fake.requests if m == "POST" and "/global/operations/" in p]
    assert waits and all(p.endswith("/wait") for p in waits)

    # A second node reuses the rule; a training node opens nothing and carries no tag.
    instances.launch(request("3" * 32, open_ports=(8000,), open_to=("203.0.113.0/24",)))
    instances.launch(request("4" * 32))
    assert [verb for verb, _ in fake.firewall_writes] == ["insert"]
    assert "tags" not in fake.inserts[2]

    # The operator narrowed the source ranges: the rule follows.
    instances.launch(request("5" * 32, open_ports=(8000,), open_to=("198.51.100.7/32",)))
    assert [verb for verb, _ in fake.firewall_writes] == ["insert", "patch"]
    assert fake.firewalls["forgeline-serving-8000"]["sourceRanges"] == ["198.51.100.7/32"]
    assert len(fake.firewalls) == 1


def test_a_rule_made_by_a_concurrent_launch_is_fine(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    instances = gce(fake, private_key)
    # Between our get (404) and our insert, another worker made it: the insert answers 409.
    fake.refuse_next(404, "The resource 'forgeline-serving-8000' was not found", "notFound")
    fake.refuse_next(409, "The resource 'forgeline-serving-8000' already exists", "alreadyExists")
    name = instances.launch(request(open_ports=(8000,)))
    assert name in fake.instances
    assert fake.inserts[0]["tags"] == {"items": ["forgeline-serving-8000"]}


def test_a_service_account_that_may_not_make_firewall_rules_is_told_so(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    fake.refuse_next(
        403, "Required 'compute.firewalls.get' permission for 'projects/forgeline-test'",
        "forbidden",
    )  # fmt: skip
    error = raises("cloud_access_denied", lambda: gce(fake, private_key).launch(
        request(open_ports=(8000,))
    ))  # fmt: skip
    assert isinstance(error, PermissionDenied)
    assert "Compute Security Admin" in error.message and "forgeline-serving-8000" in error.message
    assert fake.inserts == [] and fake.instances == {}  # no node that nobody could reach


def test_address_is_the_external_ip_of_the_access_config(
    fake: FakeGce, private_key: rsa.RSAPrivateKey
) -> None:
    instances = gce(fake, private_key)
    name = instances.launch(request())
    access = fake.instances[name]["networkInterfaces"][0]["accessConfigs"][0]
    assert access["natIP"] and instances.address(name) == access["natIP"]
    assert instances.address("forgeline-never-launched") == ""
