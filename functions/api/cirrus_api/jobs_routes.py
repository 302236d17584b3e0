"""GET /v1/jobs/{id}: the status of an asynchronous job (queued, completed or failed).

Submission has no route of its own: it is POST /v1/chat/completions answered 202 (see
service.py and jobs.py). Only the caller who submitted a job can read it; to anyone else it
does not exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from cirrus_api import route_context
from cirrus_api.jobs import POLL_AFTER_S, JobService
from cirrus_api.routes import ERROR_RESPONSES, authenticate, rate_limit
from cirrus_common.errors import NotFoundError

router = APIRouter(
    dependencies=[Depends(authenticate), Depends(rate_limit)], responses=ERROR_RESPONSES
)


def _jobs(request: Request) -> JobService:
    jobs: JobService | None = request.app.state.service.dispatcher.jobs
    if jobs is None:
        raise NotFoundError("Asynchronous jobs are not enabled here.", code="jobs_disabled")
    return jobs


@router.get("/jobs/{job_id}", summary="Get an asynchronous job (status, then its result)")
def get_job(job_id: str, request: Request) -> Any:
    ctx = route_context.current()
    job = _jobs(request).get(job_id, ctx.hints.caller)
    ctx.record("async", "job_status")
    headers = {"Retry-After": str(POLL_AFTER_S)} if job["status"] == "queued" else {}
    return JSONResponse(job, headers=headers)
