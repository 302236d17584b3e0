"""Start and stop the local stack's pieces; used by `cirrus dev`, `cirrus invoke` and tests."""

from __future__ import annotations

import json
import logging
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cirrus_common import settings as cfg
from cirrus_local.functions import HANDLERS, STREAM_HANDLERS
from cirrus_local.lambda_endpoint import LambdaServer, LocalFunction
from cirrus_local.resources import create_resources
from cirrus_local.sagemaker_endpoint import LocalEndpoint, SageMakerServer

Progress = Callable[[str], None]

# boto3 must never reach real AWS from the local stack, whatever the shell has configured.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
STATE_FILE = Path.home() / ".cache" / "cirrus" / "local-stack.json"


def _quiet_local_noise() -> None:
    """What helps nobody on a dev console: moto's per-call access lines, and Powertools'
    note that idempotency has no Lambda deadline to follow (there is none locally)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Couldn't determine the remaining time left")


class PortInUseError(RuntimeError):
    pass


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise PortInUseError(
                f"Port {port} on {host} is already in use. Stop whatever is using it "
                f"or pick another port with --port."
            ) from None


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    moto_port: int = 0  # 0: any free port
    lambda_port: int = 0
    auth_enabled: bool = False
    model_concurrency: int = 4
    sagemaker: bool = True  # the local SageMaker-runtime stand-in (GPU path on CPU)
    sagemaker_port: int = 0
    sagemaker_concurrency: int = 2
    prefix: str = "cirrus-local"


class LocalStack:
    """Embedded AWS (moto) + the Lambda stand-in, with the process environment pointed at them.

    The environment is process-wide on purpose: the API app and ModelFunction's handler run in
    this process and must read the same settings that template.yaml would give them.
    """

    def __init__(self, config: StackConfig | None = None, progress: Progress | None = None):
        self.config = config or StackConfig()
        self.progress = progress or (lambda _msg: None)
        self.env: dict[str, str] = {}
        self._saved_env: dict[str, str | None] = {}
        self._moto: Any = None
        self._lambda: LambdaServer | None = None
        self._sagemaker: SageMakerServer | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        _quiet_local_noise()

        c = self.config
        self._set_env(FAKE_AWS_ENV)
        self._moto = ThreadedMotoServer(ip_address=c.host, port=c.moto_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self._set_env({"AWS_ENDPOINT_URL": self.moto_url})
        self.progress(f"embedded AWS (moto) on {self.moto_url}")
        self._set_env(create_resources(prefix=c.prefix))

        functions = {
            "ModelFunction": LocalFunction(
                "ModelFunction",
                HANDLERS["ModelFunction"],
                STREAM_HANDLERS.get("ModelFunction"),
                concurrency=c.model_concurrency,
            )
        }
        self._lambda = LambdaServer((c.host, c.lambda_port), functions)
        self._lambda.start()
        self.lambda_url = self._lambda.url
        self._set_env(
            {
                "AWS_ENDPOINT_URL_LAMBDA": self.lambda_url,
                cfg.ENV_MODEL_FUNCTION: "ModelFunction",
                cfg.ENV_AUTH_ENABLED: "true" if c.auth_enabled else "false",
                cfg.ENV_STAGE: "local",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        self.progress(f"ModelFunction invoke endpoint on {self.lambda_url}")
        if c.sagemaker:
            self._start_sagemaker()
        cfg.get_settings.cache_clear()
        return self

    def _start_sagemaker(self) -> None:
        """The GPU path's stand-in: a real-time and an async endpoint for the first model
        the registry serves on SageMaker, writing async results where template.yaml's
        AsyncInferenceConfig does (jobs/output/, jobs/failure/ in the jobs bucket)."""
        c = self.config
        served = [m for m in cfg.Settings.from_env().models if "sagemaker" in m.backends]
        if not served:
            return
        model = next((m for m in served if m.kind == "generation"), served[0]).id
        bucket = os.environ.get(cfg.ENV_JOBS_BUCKET, "")
        realtime = f"{c.prefix}-gpu"
        endpoints = {realtime: LocalEndpoint(realtime, model, c.sagemaker_concurrency)}
        names = {cfg.ENV_SAGEMAKER_ENDPOINT: realtime}
        if bucket:
            queue = f"{c.prefix}-gpu-async"
            endpoints[queue] = LocalEndpoint(
                queue,
                model,
                output_path=f"s3://{bucket}/jobs/output/",
                failure_path=f"s3://{bucket}/jobs/failure/",
            )
            names[cfg.ENV_SAGEMAKER_ASYNC_ENDPOINT] = queue
        self._sagemaker = SageMakerServer((c.host, c.sagemaker_port), endpoints)
        self._sagemaker.start()
        self.sagemaker_url = self._sagemaker.url
        self._set_env({"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.sagemaker_url, **names})
        self.progress(f"SageMaker runtime ({model} on CPU) on {self.sagemaker_url}")

    def stop(self) -> None:
        self._forget_state()
        if self._sagemaker is not None:
            self._sagemaker.stop()
            self._sagemaker = None
        if self._lambda is not None:
            self._lambda.shutdown()
            self._lambda.server_close()
            self._lambda = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        cfg.get_settings.cache_clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- pieces ---------------------------------------------------------------------------

    def warm_models(self) -> None:
        """Build or load every Lambda-served model now, so the first request is fast."""
        import boto3

        from cirrus_common.payload import GenerationParams, ModelRequest

        settings = cfg.get_settings()
        client = boto3.client("lambda")
        for spec in settings.models:
            if "lambda" not in spec.backends:
                continue
            self.progress(f"loading model {spec.id} ({spec.source}) ...")
            if spec.kind == "generation":
                request = ModelRequest(
                    op="completion",
                    model=spec.id,
                    prompts=("Hello",),
                    params=GenerationParams(max_tokens=1),
                )
            else:
                request = ModelRequest(op="embeddings", model=spec.id, inputs=("Hello",))
            answer = client.invoke(
                FunctionName=settings.model_function_name,
                Payload=request.model_dump_json().encode(),
            )
            body = json.loads(answer["Payload"].read())
            if answer.get("FunctionError") or not body.get("ok"):
                raise RuntimeError(f"model {spec.id} failed to load: {body}")
            self.progress(f"model {spec.id} ready")

    def write_state(self, api_url: str) -> None:
        """Where this stack listens, for `cirrus keys --local` from another shell."""
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        keys = {k: v for k, v in self.env.items() if k.startswith("CIRRUS_")}
        STATE_FILE.write_text(
            json.dumps({"api_url": api_url, "moto_url": self.moto_url, "env": keys}, indent=2)
        )

    def _forget_state(self) -> None:
        """Remove the state file if it describes this stack (another may have replaced it)."""
        try:
            if json.loads(STATE_FILE.read_text()).get("moto_url") == getattr(
                self, "moto_url", None
            ):
                STATE_FILE.unlink()
        except (OSError, ValueError):
            pass

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
            self.env[name] = value
