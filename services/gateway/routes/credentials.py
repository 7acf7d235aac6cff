"""Credentials the platform uses on the user's behalf: cloud accounts to train in (checked by
a dry run before they are stored) and a wandb key. Write-only: no route returns a secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from forgeline.v1 import trainer_pb2

from services.gateway.deps import CurrentPrincipal, TrainerDep
from services.gateway.openapi import ERRORS
from services.gateway.training_schemas import (
    CredentialCreate,
    CredentialPublic,
    CredentialsPublic,
)

router = APIRouter(tags=["credentials"])
CredentialId = Annotated[str, Path(max_length=64)]


@router.post(
    "/credentials", response_model=CredentialPublic, status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 403, 409, 422, 503),
)  # fmt: skip
async def create_credential(
    body: CredentialCreate, principal: CurrentPrincipal, trainer: TrainerDep
) -> CredentialPublic:
    """Store an AWS access key, a GCP service account or a wandb key. Cloud credentials are
    first checked with a dry run (may they start a GPU machine in that region or zone?)."""
    reply = await trainer.call("CreateCredential", body.to_proto(principal.user.id))
    return CredentialPublic.from_proto(reply)


@router.get("/credentials", response_model=CredentialsPublic, responses=ERRORS(401, 503))
async def list_credentials(principal: CurrentPrincipal, trainer: TrainerDep) -> CredentialsPublic:
    reply = await trainer.call(
        "ListCredentials", trainer_pb2.ListCredentialsRequest(owner_id=principal.user.id)
    )
    data = [CredentialPublic.from_proto(c) for c in reply.credentials]
    return CredentialsPublic(data=data, count=len(data))


@router.delete(
    "/credentials/{credential_id}", status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS(401, 404, 409, 503),
)  # fmt: skip
async def delete_credential(
    credential_id: CredentialId, principal: CurrentPrincipal, trainer: TrainerDep
) -> Response:
    """Forget them; refused while a job or a live deployment runs in that account."""
    await trainer.call(
        "DeleteCredential",
        trainer_pb2.DeleteCredentialRequest(owner_id=principal.user.id, id=credential_id),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
