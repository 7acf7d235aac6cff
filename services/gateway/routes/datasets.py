"""Datasets to fine-tune on: upload (streamed to the object store), inspection results,
preview, confirm the format, delete.

The gateway stores the file under `<owner>/datasets/<id>/<file name>` and registers it with
the trainer, which inspects it in the background: the answer to an upload is the dataset in
state `inspecting`; poll it (or its list) until it is `ready`, `invalid` or `failed`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from forgeline.v1 import trainer_pb2

from services.common.errors import ForgelineError
from services.common.logging import get_logger
from services.common.storage import owner_key
from services.gateway.deps import CurrentPrincipal, SettingsDep, StorageDep, TrainerDep
from services.gateway.openapi import ERRORS
from services.gateway.training_schemas import (
    DatasetPublic,
    DatasetsPublic,
    DatasetUpdate,
    PreviewPublic,
    PreviewRowPublic,
)
from services.gateway.uploads import UploadQuota, delete_object, safe_file_name, store_upload

log = get_logger(__name__)
router = APIRouter(prefix="/datasets", tags=["datasets"])

# The body-size middleware lets this route through; the file is limited by the route.
UPLOAD_PATH_PATTERN = r"/datasets"

DatasetId = Annotated[str, Path(max_length=64)]


@router.post(
    "",
    response_model=DatasetPublic,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 409, 413, 422, 503),
)
async def upload_dataset(
    file: UploadFile,
    principal: CurrentPrincipal,
    trainer: TrainerDep,
    s3: StorageDep,
    settings: SettingsDep,
    name: Annotated[str | None, Form(max_length=200)] = None,
    base_model: Annotated[str, Form(max_length=100)] = "",
) -> DatasetPublic:
    """Upload one dataset file (multipart field `file`): JSONL, CSV or Parquet rows
    (Alpaca instructions, chat messages, ShareGPT conversations, preference pairs, or `text`),
    or documents for continued pre-training (pdf, txt, md, docx, html, or a .zip of them).

    Its format is detected and it is checked row by row in the background; the answer is
    the dataset in state `inspecting`. `base_model` chooses whose tokenizer counts the tokens
    (default: the bundled model)."""
    owner_id = principal.user.id
    file_name = safe_file_name(file.filename)
    dataset_id = uuid.uuid4().hex
    prefix = owner_key(owner_id, "datasets", dataset_id) + "/"
    stored = await store_upload(
        file,
        prefix=prefix,
        bucket=settings.s3_bucket,
        s3=s3,
        max_bytes=settings.max_upload_bytes,
        expand_zip=False,  # a zip of documents is one dataset, read whole by the trainer
        quota=UploadQuota(owner_id, settings.upload_quota_bytes),
    )
    obj = stored[0]
    try:
        dataset = await trainer.call(
            "CreateDataset",
            trainer_pb2.CreateDatasetRequest(
                owner_id=owner_id,
                id=dataset_id,
                name=(name or file_name).strip(),
                file_name=file_name,
                bucket=settings.s3_bucket,
                key=obj.key,
                size=obj.size,
                base_model=base_model,
            ),
        )
    except ForgelineError:
        # Nothing half-written: a dataset that was not registered leaves no object behind.
        await run_in_threadpool(delete_object, s3, settings.s3_bucket, obj.key)
        raise
    return DatasetPublic.from_proto(dataset)


@router.get("", response_model=DatasetsPublic, responses=ERRORS(401, 503))
async def list_datasets(principal: CurrentPrincipal, trainer: TrainerDep) -> DatasetsPublic:
    reply = await trainer.call(
        "ListDatasets", trainer_pb2.ListDatasetsRequest(owner_id=principal.user.id)
    )
    data = [DatasetPublic.from_proto(d) for d in reply.datasets]
    return DatasetsPublic(data=data, count=len(data))


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=ERRORS(401, 404, 503))
async def get_dataset(
    dataset_id: DatasetId, principal: CurrentPrincipal, trainer: TrainerDep
) -> DatasetPublic:
    """The dataset with what inspection found: format, row count, the first problems with
    their line numbers and how to fix them, and token statistics."""
    dataset = await trainer.call(
        "GetDataset", trainer_pb2.GetDatasetRequest(owner_id=principal.user.id, id=dataset_id)
    )
    return DatasetPublic.from_proto(dataset)


@router.patch(
    "/{dataset_id}", response_model=DatasetPublic, responses=ERRORS(401, 404, 409, 422, 503)
)
async def update_dataset(
    dataset_id: DatasetId, body: DatasetUpdate, principal: CurrentPrincipal, trainer: TrainerDep
) -> DatasetPublic:
    """Confirm or correct the detected format, choose the base model whose tokenizer counts
    the tokens, the sequence length, or the share held out for evaluation."""
    dataset = await trainer.call("UpdateDataset", body.to_proto(principal.user.id, dataset_id))
    return DatasetPublic.from_proto(dataset)


@router.get(
    "/{dataset_id}/preview", response_model=PreviewPublic, responses=ERRORS(401, 404, 422, 503)
)
async def preview_dataset(
    dataset_id: DatasetId,
    principal: CurrentPrincipal,
    trainer: TrainerDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PreviewPublic:
    """Rows as stored, with their line numbers and whether each is held out for evaluation."""
    reply = await trainer.call(
        "PreviewDataset",
        trainer_pb2.PreviewDatasetRequest(
            owner_id=principal.user.id, id=dataset_id, offset=offset, limit=limit
        ),
    )
    rows = [PreviewRowPublic.from_proto(r) for r in reply.rows]
    return PreviewPublic(data=rows, count=len(rows))


@router.delete(
    "/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS(401, 404, 503)
)
async def delete_dataset(
    dataset_id: DatasetId,
    principal: CurrentPrincipal,
    trainer: TrainerDep,
    s3: StorageDep,
) -> Response:
    reply = await trainer.call(
        "DeleteDataset",
        trainer_pb2.DeleteDatasetRequest(owner_id=principal.user.id, id=dataset_id),
    )
    try:
        await run_in_threadpool(delete_object, s3, reply.bucket, reply.key)
    except ForgelineError:
        # The dataset is gone for the user; an orphan object is logged, not answered.
        log.error("dataset object not deleted", dataset_id=dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
