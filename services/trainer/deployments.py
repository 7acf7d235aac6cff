"""What the trainer asks the deployer (over gRPC, never its tables): whether a live deployment
runs on a stored cloud credential, before the credential may be deleted."""

from __future__ import annotations

import grpc
from forgeline.v1 import deployer_pb2, deployer_pb2_grpc
from pydantic import SecretStr

from services.common.errors import from_grpc
from services.common.grpc_client import sync_channel


class DeployerClient:
    def __init__(self, address: str, *, deadline_seconds: float, token: SecretStr | str) -> None:
        self._stub = deployer_pb2_grpc.DeployerServiceStub(sync_channel(address, token=token))
        self._deadline = deadline_seconds

    def deployment_on(self, owner_id: str, credential_id: str) -> str:
        """The name of one of the owner's live deployments on this credential, or "". An
        unreachable deployer is an error (deployer_unavailable), never a "no": deleting the
        credential under a running machine would leave it unstoppable and billing."""
        request = deployer_pb2.CredentialInUseRequest(
            owner_id=owner_id, credential_id=credential_id
        )
        try:
            reply = self._stub.CredentialInUse(request, timeout=self._deadline)
        except grpc.RpcError as error:
            raise from_grpc(
                error.code(),
                error.details(),
                tuple(error.trailing_metadata() or ()),
                service="deployer",
            ) from None
        return str(reply.deployment_name) if reply.in_use else ""
