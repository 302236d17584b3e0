"""Asynchronous jobs on SageMaker asynchronous inference: submit, and report status.

Submitting (POST /v1/chat/completions with `Prefer: respond-async`, or a request the routing
policy sends there) writes the Messages API body to s3://<jobs bucket>/jobs/input/<id>.json,
calls InvokeEndpointAsync with it, and records the job (model, owner, the S3 locations
SageMaker will write) at jobs/records/<id>.json. Status is derived from S3: the output object
present means completed, the failure object failed, neither queued.

Exactly once: with an `Idempotency-Key` header the submission runs under Powertools
idempotency on the DynamoDB idempotency table, keyed by caller and key, so a retried submission
returns the job the first one created (a different body under the same key is refused, a
concurrent duplicate gets 409). The input and the record are written before and after the
invoke; if InvokeEndpointAsync refuses, the client gets 503 and no job id, and a retry with the
same key may submit again because nothing was accepted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cirrus_api.backends.base import BackendFailedError
from cirrus_api.backends.sagemaker import SageMakerBackend, messages_request, parse_chat_completion
from cirrus_api.route_context import RouteHints
from cirrus_common.errors import (
    CirrusError,
    InvalidRequestError,
    NotFoundError,
    ServiceUnavailableError,
)
from cirrus_common.observability import logger
from cirrus_common.openai_shapes import chat_completion
from cirrus_common.payload import GenerationResult, ModelRequest
from cirrus_common.registry import ModelSpec
from cirrus_common.s3_uri import split_s3_uri

if TYPE_CHECKING:  # Powertools idempotency loads on first use, not at ApiFunction's init
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
    )

JOB_ID = re.compile(r"^job-[0-9a-f]{32}$")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as Stripe and IETF draft
INPUT_PREFIX = "jobs/input/"
RECORD_PREFIX = "jobs/records/"
IDEMPOTENCY_TTL_S = 24 * 3600  # a retried submission within a day returns the same job
POLL_AFTER_S = 2

log = logger("cirrus-api")


class ConflictError(CirrusError):
    status = 409
    type = "invalid_request_error"
    default_code = "conflict"


RECORD_WRITE_ATTEMPTS = 3


@contextlib.contextmanager
def _storage_unavailable_is_503() -> Iterator[None]:
    """S3 or the idempotency table failing is an outage to retry, not a server bug."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyPersistenceLayerError,
    )

    try:
        yield
    except (ClientError, BotoCoreError, IdempotencyPersistenceLayerError) as exc:
        log.warning("job storage unavailable", extra={"error": type(exc).__name__})
        raise ServiceUnavailableError(
            "Job storage is unavailable; retry shortly.", code="jobs_unavailable", retry_after=5
        ) from exc


class JobService:
    def __init__(
        self,
        *,
        bucket: str,
        idempotency_table: str,
        submitter: SageMakerBackend,
        s3_client: Any = None,
        persistence: Any = None,
    ) -> None:
        if not bucket:
            raise ValueError("asynchronous jobs need a jobs bucket")
        self.bucket = bucket
        self.idempotency_table = idempotency_table
        self.submitter = submitter
        if s3_client is not None:
            self.__dict__["s3"] = s3_client
        if persistence is not None:
            self.__dict__["_persistence"] = persistence

    @cached_property
    def s3(self) -> Any:
        return boto3.client("s3")

    @cached_property
    def _persistence(self) -> DynamoDBPersistenceLayer:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(table_name=self.idempotency_table)

    @cached_property
    def _config(self) -> IdempotencyConfig:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(
            event_key_jmespath="[caller, key]",
            payload_validation_jmespath="body_sha256",
            expires_after_seconds=IDEMPOTENCY_TTL_S,
        )

    def register_lambda_context(self, context: Any) -> None:
        """Let an in-progress submission expire with the invocation's deadline, so a retry
        after a timeout is not refused as "already in progress" for the whole TTL."""
        self._config.register_lambda_context(context)

    @cached_property
    def _submit_once(self) -> Any:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function

        return idempotent_function(
            data_keyword_argument="submission",
            persistence_store=self._persistence,
            config=self._config,
        )(self._submit)

    # ---- submit ---------------------------------------------------------------------------

    def submit(self, spec: ModelSpec, request: ModelRequest, hints: RouteHints) -> dict[str, Any]:
        with _storage_unavailable_is_503():
            return self._submit_checked(spec, request, hints)

    def _submit_checked(
        self, spec: ModelSpec, request: ModelRequest, hints: RouteHints
    ) -> dict[str, Any]:
        body = messages_request(request, stream=False)
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
        submission = {
            "caller": hints.caller,
            "key": hints.idempotency_key,
            "model": spec.id,
            "body": raw,
            "body_sha256": hashlib.sha256(raw.encode()).hexdigest(),
        }
        if hints.idempotency_key is None:
            job = self._submit(submission=submission)
        else:
            if not IDEMPOTENCY_KEY.match(hints.idempotency_key):
                raise InvalidRequestError(
                    "Idempotency-Key must be 1-255 visible ASCII characters.",
                    param="Idempotency-Key",
                    code="invalid_idempotency_key",
                )
            if not self.idempotency_table:
                raise InvalidRequestError(
                    "Idempotency-Key is not supported here (no idempotency table).",
                    param="Idempotency-Key",
                    code="invalid_idempotency_key",
                )
            from aws_lambda_powertools.utilities.idempotency.exceptions import (
                IdempotencyAlreadyInProgressError,
                IdempotencyValidationError,
            )

            if hints.lambda_context is not None:
                # An invocation that dies mid-submission frees the key when its time is up,
                # instead of holding it "in progress" for the whole TTL.
                self._config.register_lambda_context(hints.lambda_context)
            try:
                job = self._submit_once(submission=submission)
            except IdempotencyValidationError:
                raise InvalidRequestError(
                    "This Idempotency-Key was used with a different request body.",
                    param="Idempotency-Key",
                    code="idempotency_key_reused",
                ) from None
            except IdempotencyAlreadyInProgressError:
                raise ConflictError(
                    "A request with this Idempotency-Key is still being processed.",
                    param="Idempotency-Key",
                    retry_after=1,
                ) from None
        return self._view(job, "queued")

    def _submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        """The side effects, once per accepted job. Returns what the idempotency record keeps."""
        job_id = f"job-{uuid.uuid4().hex}"
        created = int(time.time())
        input_key = f"{INPUT_PREFIX}{job_id}.json"
        self.s3.put_object(
            Bucket=self.bucket,
            Key=input_key,
            Body=submission["body"].encode(),
            ContentType="application/json",
        )
        accepted = self.submitter.submit_async(f"s3://{self.bucket}/{input_key}", job_id)
        record = {
            "id": job_id,
            "model": submission["model"],
            "created_at": created,
            "owner": submission["caller"],
            "input_location": f"s3://{self.bucket}/{input_key}",
            "output_location": accepted.output_location,
            "failure_location": accepted.failure_location,
        }
        for attempt in range(RECORD_WRITE_ATTEMPTS):
            try:
                self._put_record(record)
                break
            except (ClientError, BotoCoreError):
                # The endpoint has the job: answering 503 now would invite a second
                # submission, so try again, and in the end say so loudly.
                if attempt + 1 == RECORD_WRITE_ATTEMPTS:
                    log.exception(
                        "job accepted but its record was not written", extra={"job": job_id}
                    )
                else:
                    time.sleep(0.2 * (attempt + 1))
        log.info("job submitted", extra={"job": job_id, "model": submission["model"]})
        return {"id": job_id, "model": submission["model"], "created_at": created}

    def _put_record(self, record: dict[str, Any]) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{RECORD_PREFIX}{record['id']}.json",
            Body=json.dumps(record).encode(),
            ContentType="application/json",
        )

    # ---- status ---------------------------------------------------------------------------

    def get(self, job_id: str, caller: str) -> dict[str, Any]:
        with _storage_unavailable_is_503():
            return self._get(job_id, caller)

    def _get(self, job_id: str, caller: str) -> dict[str, Any]:
        record = self._record(job_id)
        if record is None or (record.get("owner") and record["owner"] != caller):
            raise NotFoundError(f"No job {job_id!r}.", param="job_id", code="job_not_found")
        output = self._read(record.get("output_location", ""))
        if output is not None:
            try:
                result = parse_chat_completion(output)
            except BackendFailedError:
                return self._view(record, "failed", error=_job_error("malformed output"))
            return self._view(record, "completed", result=_completion(record, result.result))
        if self._read(record.get("failure_location", "")) is not None:
            return self._view(record, "failed", error=_job_error("the model endpoint failed"))
        return self._view(record, "queued")

    def _record(self, job_id: str) -> dict[str, Any] | None:
        if not JOB_ID.match(job_id):
            return None
        raw = self._read(f"s3://{self.bucket}/{RECORD_PREFIX}{job_id}.json")
        return None if raw is None else dict(json.loads(raw))

    def _read(self, uri: str) -> bytes | None:
        if not uri.startswith("s3://"):
            return None
        bucket, key = split_s3_uri(uri)
        try:
            body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise  # an outage: answered 503 + Retry-After by the caller's guard
        return body

    @staticmethod
    def _view(
        job: dict[str, Any],
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": job["id"],
            "object": "job",
            "model": job.get("model"),
            "status": status,
            "created_at": job.get("created_at"),
            "result": result,
            "error": error,
        }


def _job_error(detail: str) -> dict[str, Any]:
    log.warning("job failed", extra={"detail": detail})
    return {
        "message": "The job failed; submit it again.",
        "type": "server_error",
        "param": None,
        "code": "job_failed",
    }


def _completion(record: dict[str, Any], result: Any) -> dict[str, Any]:
    """The container's answer in Cirrus's chat.completion shape (our model id and job id)."""
    assert isinstance(result, GenerationResult)
    return chat_completion(
        result,
        model=str(record.get("model")),
        completion_id=f"chatcmpl-{record['id'].removeprefix('job-')}",
        created=record.get("created_at"),
    )
