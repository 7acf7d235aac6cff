"""An instance API for a stored cloud credential: the one factory training and deployments
both use, so a credential behaves alike in both.

The endpoints and images are the operator's choice, never the user's: tests point them at
moto and a fake Compute Engine, private clouds at their own. The variables keep the names
they had when training was their only user (TRAINER_AWS_ENDPOINT_URL, ...).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel

from services.common.cloud.aws import Ec2Instances
from services.common.cloud.instances import InstanceApi
from services.common.crypto import SECRET_UNREADABLE
from services.common.errors import ForgelineError, InvalidInput
from services.common.logging import get_logger

log = get_logger(__name__)


class CloudEndpointSettings(BaseModel):
    """Mixed into a service's settings (pydantic-settings reads each field's variable)."""

    trainer_aws_endpoint_url: str = ""
    trainer_aws_image_id: str = ""  # default: AWS's current Deep Learning AMI (via SSM)
    trainer_gcp_api_endpoint: str = ""
    trainer_gcp_image: str = ""  # default: the Deep Learning VM image family


def instance_api(
    settings: CloudEndpointSettings, kind: str, location: str, secret: dict[str, Any]
) -> InstanceApi:
    """The instance API of one account (`secret`, decrypted) in one region or zone.

    Made once per account and kept: building a boto3 or Compute Engine client costs tens of
    milliseconds of CPU, and the reapers ask for every stored account every few minutes."""
    return _cached_instance_api(
        kind,
        location,
        json.dumps(secret, sort_keys=True),
        settings.trainer_aws_endpoint_url,
        settings.trainer_aws_image_id,
        settings.trainer_gcp_api_endpoint,
        settings.trainer_gcp_image,
    )


@functools.lru_cache(maxsize=256)
def _cached_instance_api(
    kind: str,
    location: str,
    secret_json: str,
    aws_endpoint_url: str,
    aws_image_id: str,
    gcp_api_endpoint: str,
    gcp_image: str,
) -> InstanceApi:
    secret = json.loads(secret_json)
    if kind == "aws":
        return Ec2Instances(
            access_key_id=secret["access_key_id"],
            secret_access_key=secret["secret_access_key"],
            session_token=secret.get("session_token") or None,
            region=location,
            endpoint_url=aws_endpoint_url or None,
            image=aws_image_id or None,
        )
    if kind == "gcp":
        # Imported on first use: google.cloud.compute_v1 costs 3.5 s of CPU to import, in
        # each of the four processes that may launch machines, on every start of the stack,
        # and most installations never hold a GCP account.
        from services.common.cloud.gcp import GceInstances

        return GceInstances(
            secret["service_account"],
            location,
            api_endpoint=gcp_api_endpoint or None,
            image=gcp_image or None,
        )
    raise InvalidInput("unknown_credential_kind", "These credentials cannot start machines.")


def report_unlistable(credential_id: str, owner_id: str, error: ForgelineError) -> None:
    """What a reaper says when an account's instances cannot be listed. Revoked keys or an
    unreachable cloud are tried again next time; a credential no key decrypts is loud: that
    account's machines go unwatched until the operator puts the old key back
    (FORGELINE_PREVIOUS_SECRET_KEYS), while the other accounts are still reaped."""
    if error.code == SECRET_UNREADABLE:
        log.error("reaper cannot decrypt a cloud credential: its instances are not being "
                  "reaped", credential_id=credential_id, owner_id=owner_id,
                  code=error.code)  # fmt: skip
    else:
        log.warning("reaper could not list instances", credential_id=credential_id,
                    code=error.code)  # fmt: skip
