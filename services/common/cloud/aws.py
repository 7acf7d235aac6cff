"""EC2 in the user's own AWS account: GPU instances from a Deep Learning AMI.

The instance shuts itself down when its startup script ends, and is launched with
`InstanceInitiatedShutdownBehavior=terminate`, so a node whose platform vanished still stops
billing; the platform terminates it as well when the job ends, and the reaper catches the rest.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

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

# AWS publishes the current Deep Learning AMI (NVIDIA driver, CUDA, PyTorch) as a public SSM
# parameter, so the platform never hard-codes an AMI id that differs per region and ages.
DLAMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/"
    "oss-nvidia-driver-gpu-pytorch-2.7-ubuntu-22.04/latest/ami-id"
)
_STATES: dict[str, InstanceState] = {
    "pending": "starting",
    "running": "running",
    "stopping": "stopped",
    "stopped": "stopped",
    "shutting-down": "gone",
    "terminated": "gone",
}
_BAD_KEYS = {
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}
_DENIED = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}
_CAPACITY = {"InsufficientInstanceCapacity", "InsufficientHostCapacity", "Unsupported"}
_QUOTA = {"VcpuLimitExceeded", "InstanceLimitExceeded", "MaxSpotInstanceCountExceeded"}


class Ec2Instances:
    provider = "aws"

    def __init__(
        self,
        *,
        access_key_id: str,
        secret_access_key: str,
        region: str,
        session_token: str | None = None,
        endpoint_url: str | None = None,
        image: str | None = None,
    ) -> None:
        self.region = region
        self.image = image
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token or None,
            region_name=region,
        )
        # Few retries: a user waiting on "check credentials" should hear back in seconds.
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10)
        self.ec2 = session.client("ec2", endpoint_url=endpoint_url, config=config)
        self.ssm = session.client("ssm", endpoint_url=endpoint_url, config=config)

    # --- InstanceApi ------------------------------------------------------------------------

    def check(self) -> None:
        """EC2's own dry run: may these credentials launch an instance here?"""
        try:
            self.ec2.run_instances(
                ImageId=self._image(),
                InstanceType="g5.xlarge",
                MinCount=1,
                MaxCount=1,
                DryRun=True,
            )
        except ClientError as error:
            if _code(error) == "DryRunOperation":
                return  # "Request would have succeeded"
            raise _translate(error, "check these credentials") from error
        except (BotoCoreError, EndpointConnectionError) as error:
            raise _unreachable(self.region) from error

    def launch(self, request: LaunchRequest) -> str:
        tags = [
            {"Key": JOB_TAG, "Value": request.job_id},
            {"Key": OWNER_TAG, "Value": request.owner_id},
            {"Key": "Name", "Value": request.name or f"forgeline-{request.job_id[:20]}"},
            *({"Key": k, "Value": v} for k, v in request.labels.items()),
        ]
        try:
            answer = self.ec2.run_instances(
                ImageId=self._image(),
                InstanceType=request.instance_type,
                MinCount=1,
                MaxCount=1,
                UserData=request.startup_script,
                # The startup script ends with `shutdown`: that must stop the billing too.
                InstanceInitiatedShutdownBehavior="terminate",
                BlockDeviceMappings=[
                    {
                        "DeviceName": "/dev/sda1",
                        "Ebs": {
                            "VolumeSize": request.disk_gb,
                            "VolumeType": "gp3",
                            "DeleteOnTermination": True,
                        },
                    }
                ],
                MetadataOptions={"HttpTokens": "required"},  # IMDSv2 only
                **self._security_groups(request.open_ports, request.open_to),
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": tags},
                    {"ResourceType": "volume", "Tags": tags},
                ],
                # A retried launch after a worker crash must not start a second instance.
                ClientToken=f"forgeline-{request.job_id}-{request.name}"[:64],
            )
        except ClientError as error:
            raise _translate(error, f"start a {request.instance_type}") from error
        except (BotoCoreError, EndpointConnectionError) as error:
            raise _unreachable(self.region) from error
        instance_id = str(answer["Instances"][0]["InstanceId"])
        log.info("ec2 instance launched", job_id=request.job_id, instance_id=instance_id)
        return instance_id

    def state(self, ref: str) -> InstanceState:
        try:
            answer = self.ec2.describe_instances(InstanceIds=[ref])
        except ClientError as error:
            if _code(error).startswith("InvalidInstanceID"):
                return "gone"
            raise _translate(error, "look at the training machine") from error
        for reservation in answer.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                return _STATES.get(instance["State"]["Name"], "gone")
        return "gone"

    def address(self, ref: str) -> str:
        try:
            answer = self.ec2.describe_instances(InstanceIds=[ref])
        except ClientError as error:
            if _code(error).startswith("InvalidInstanceID"):
                return ""
            raise _translate(error, "look at the machine") from error
        for reservation in answer.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                return str(instance.get("PublicIpAddress") or "")
        return ""

    def terminate(self, ref: str) -> None:
        try:
            self.ec2.terminate_instances(InstanceIds=[ref])
        except ClientError as error:
            if _code(error).startswith("InvalidInstanceID"):
                return
            raise _translate(error, "terminate the training machine") from error
        log.info("ec2 instance terminated", instance_id=ref)

    def tagged(self) -> list[TaggedInstance]:
        found: list[TaggedInstance] = []
        pages = self.ec2.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": "tag-key", "Values": [JOB_TAG]},
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                },
            ]
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    state = _STATES.get(instance["State"]["Name"], "gone")
                    if state != "gone":
                        found.append(
                            TaggedInstance(
                                instance["InstanceId"],
                                tags[JOB_TAG],
                                state,
                                owner_id=tags.get(OWNER_TAG, ""),
                                role=tags.get(ROLE_TAG, ""),
                            )
                        )
        return found

    # --- helpers ----------------------------------------------------------------------------

    def _security_groups(self, ports: tuple[int, ...], sources: tuple[str, ...]) -> dict[str, Any]:
        """Launch arguments that open `ports` to `sources` (CIDRs): one security group per
        set of ports, made once in the account's default VPC (a group made earlier keeps the
        ranges it was made with). No ports: the default group, which admits nothing from
        outside."""
        if not ports:
            return {}
        name = "forgeline-serving-" + "-".join(str(p) for p in sorted(ports))
        try:
            found = self.ec2.describe_security_groups(
                Filters=[{"Name": "group-name", "Values": [name]}]
            )["SecurityGroups"]
            if found:
                return {"SecurityGroupIds": [found[0]["GroupId"]]}
            group_id = self.ec2.create_security_group(
                GroupName=name,
                Description="Forgeline serving nodes: the model API, behind a per-deployment key",
            )["GroupId"]
            self.ec2.authorize_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "IpRanges": [{"CidrIp": c} for c in sources if ":" not in c],
                        "Ipv6Ranges": [{"CidrIpv6": c} for c in sources if ":" in c],
                    }
                    for port in sorted(ports)
                ],
            )
        except ClientError as error:
            raise _translate(error, "open the serving port") from error
        except (BotoCoreError, EndpointConnectionError) as error:
            raise _unreachable(self.region) from error
        log.info("ec2 security group created", name=name, group_id=group_id)
        return {"SecurityGroupIds": [group_id]}

    def _image(self) -> str:
        if self.image:
            return self.image
        try:
            value = self.ssm.get_parameter(Name=DLAMI_PARAMETER)["Parameter"]["Value"]
        except ClientError as error:
            if _code(error) == "ParameterNotFound":
                raise InvalidInput(
                    "cloud_image_not_found",
                    f"AWS has no Deep Learning AMI in {self.region}; choose another region.",
                ) from error
            raise _translate(error, "find the Deep Learning AMI") from error
        except (BotoCoreError, EndpointConnectionError) as error:
            raise _unreachable(self.region) from error
        self.image = str(value)
        return self.image


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _unreachable(region: str) -> ForgelineError:
    return Unavailable(
        "cloud_unreachable",
        f"AWS could not be reached in {region}; check the region and try again.",
    )


def _translate(error: ClientError, doing: str) -> ForgelineError:
    """A sentence for the user, with a stable code; never the request (it holds the key)."""
    code = _code(error)
    if code in _BAD_KEYS:
        return InvalidInput(
            "cloud_credentials_invalid",
            "AWS did not accept this access key: check the key id and the secret.",
        )
    if code in _DENIED:
        return PermissionDenied(
            "cloud_access_denied",
            f"These AWS credentials may not {doing}: give them ec2:RunInstances, "
            "ec2:DescribeInstances, ec2:TerminateInstances and ec2:CreateTags (and, to deploy "
            "models, ec2:DescribeSecurityGroups, ec2:CreateSecurityGroup and "
            "ec2:AuthorizeSecurityGroupIngress).",
        )
    if code in _QUOTA:
        return InvalidInput(
            "cloud_quota_exceeded",
            "Your AWS account's GPU quota is too small for this machine: ask AWS for a higher "
            "'Running On-Demand G and VT instances' limit, or choose a smaller machine.",
        )
    if code in _CAPACITY:
        return Unavailable(
            "cloud_capacity_unavailable",
            "AWS has no free machine of this kind in this region right now; try again later "
            "or in another region.",
        )
    message: Any = error.response.get("Error", {}).get("Message", "")
    return Unavailable("cloud_error", f"AWS refused to {doing}: {str(message)[:300]}")
