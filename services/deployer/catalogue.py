"""What the deployer asks the trainer (over gRPC, never its internals): the base-model
catalogue, the caller's model versions, and stored cloud credentials."""

from __future__ import annotations

import grpc
from forgeline.v1 import trainer_pb2, trainer_pb2_grpc
from pydantic import SecretStr

from services.common.errors import NotFound, from_grpc
from services.common.grpc_client import sync_channel


class TrainerCatalogue:
    def __init__(self, address: str, *, deadline_seconds: float, token: SecretStr | str) -> None:
        self._stub = trainer_pb2_grpc.TrainerServiceStub(sync_channel(address, token=token))
        self._deadline = deadline_seconds

    def _call(self, rpc: str, request: object) -> object:
        try:
            return getattr(self._stub, rpc)(request, timeout=self._deadline)
        except grpc.RpcError as error:
            raise from_grpc(
                error.code(),
                error.details(),
                tuple(error.trailing_metadata() or ()),
                service="trainer",
            ) from None

    def base_model(self, model_id: str) -> trainer_pb2.BaseModel:
        reply = self._call("ListBaseModels", trainer_pb2.ListBaseModelsRequest())
        assert isinstance(reply, trainer_pb2.ListBaseModelsResponse)
        for model in reply.base_models:
            if model.id == model_id:
                return model
        choices = ", ".join(m.id for m in reply.base_models)
        raise NotFound(
            "unknown_base_model", f"There is no base model {model_id!r}. Choose one of: {choices}."
        )

    def model_version(self, owner_id: str, version_id: str) -> trainer_pb2.ModelVersion:
        """The owner's version; another user's looks exactly like a missing one."""
        reply = self._call(
            "ListModelVersions", trainer_pb2.ListModelVersionsRequest(owner_id=owner_id)
        )
        assert isinstance(reply, trainer_pb2.ListModelVersionsResponse)
        for version in reply.versions:
            if version.id == version_id and version.owner_id == owner_id:
                return version
        raise NotFound("model_version_not_found", "There is no such model version.")

    def credential_source(self, owner_id: str, credential_id: str) -> trainer_pb2.CredentialSource:
        """The owner's stored credential, its secret still encrypted with the platform key;
        another user's looks exactly like a missing one (`credential_not_found`)."""
        reply = self._call(
            "GetCredentialSource",
            trainer_pb2.GetCredentialSourceRequest(owner_id=owner_id, id=credential_id),
        )
        assert isinstance(reply, trainer_pb2.CredentialSource)
        return reply

    def cloud_credential_sources(self) -> list[trainer_pb2.CredentialSource]:
        """Every stored cloud credential, of every owner: for the serving reaper."""
        reply = self._call("ListCredentialSources", trainer_pb2.ListCredentialSourcesRequest())
        assert isinstance(reply, trainer_pb2.ListCredentialSourcesResponse)
        return list(reply.sources)
