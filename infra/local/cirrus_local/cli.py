"""`cirrus`: run the local stack, run events through handlers, manage API keys.

cirrus dev [--port 3000]              the API on 127.0.0.1, with embedded AWS and models
cirrus invoke ModelFunction -e events/model-chat.json
cirrus keys create NAME | list | revoke KEY_ID   (--local: the running `cirrus dev`)
cirrus build-model                    build (or find cached) the demo model
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _progress(message: str) -> None:
    print(f"[cirrus] {message}", file=sys.stderr, flush=True)


# ---- dev ---------------------------------------------------------------------------------


def cmd_dev(args: argparse.Namespace) -> int:
    from cirrus_local.stack import LocalStack, PortInUseError, StackConfig, check_port_free

    try:
        check_port_free(args.host, args.port)
    except PortInUseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    config = StackConfig(host=args.host, auth_enabled=args.auth)
    stack = LocalStack(config, progress=_progress)
    try:
        stack.start()
        _build_builtin_models()
        if not args.no_warm:
            stack.warm_models()
        from cirrus_api.app import build_dispatcher, build_verifier, create_app
        from cirrus_common.settings import get_settings

        settings = get_settings()
        app = create_app(settings, build_dispatcher(settings), build_verifier(settings))
        url = f"http://{args.host}:{args.port}"
        stack.write_state(url)
        _print_banner(url, settings.auth_enabled)
        server = uvicorn.Server(
            uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
        )
        server.run()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        _progress("shutting down")
        stack.stop()


def _build_builtin_models() -> None:
    from cirrus_common.settings import get_settings

    if any(spec.source == "builtin:demo" for spec in get_settings().models):
        from cirrus_model.demo_model import ensure_demo_model

        path = ensure_demo_model(progress=_progress)
        _progress(f"demo model at {path}")


def _print_banner(url: str, auth: bool) -> None:
    key = "$CIRRUS_API_KEY" if auth else "local"
    print(
        f"""
Cirrus is serving the OpenAI API at {url}/v1  (Ctrl-C to stop)
  auth: {"on: create a key with `cirrus keys create me --local`" if auth else "off (any key)"}

Try it:
  curl {url}/v1/chat/completions -H "Authorization: Bearer {key}" \\
    -H 'Content-Type: application/json' -d '{{"model": "cirrus-demo", "max_tokens": 40,
    "messages": [{{"role": "user", "content": "What is a module?"}}]}}'

  python -c "from openai import OpenAI
c = OpenAI(base_url='{url}/v1', api_key='{key}')
r = c.chat.completions.create(model='cirrus-demo', max_tokens=40,
    messages=[{{'role': 'user', 'content': 'What is a module?'}}])
print(r.choices[0].message.content)"
""",
        flush=True,
    )


# ---- invoke ------------------------------------------------------------------------------


def cmd_invoke(args: argparse.Namespace) -> int:
    from cirrus_local.functions import HANDLERS

    if args.function not in HANDLERS:
        print(
            f"error: unknown function {args.function!r}; one of {sorted(HANDLERS)}", file=sys.stderr
        )
        return 2
    try:
        event = (
            json.loads(Path(args.event).read_text()) if args.event != "-" else json.load(sys.stdin)
        )
    except (OSError, ValueError) as exc:
        print(f"error: cannot read event {args.event}: {exc}", file=sys.stderr)
        return 2
    try:
        result = invoke(args.function, event)
    except Exception as exc:  # as Lambda reports an unhandled error, and sam local invoke
        print(json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}))
        return 1
    print(json.dumps(result))
    return 0


def invoke(function: str, event: Any) -> Any:
    """Run one event through a handler, with the local stack behind it, as `sam local invoke`.

    Logs go to stderr so that stdout holds only the function's answer.
    """
    from cirrus_local.functions import HANDLERS, LocalLambdaContext, load
    from cirrus_local.stack import LocalStack

    with contextlib.redirect_stdout(sys.stderr), LocalStack():
        handler = load(HANDLERS[function])
        return handler(event, LocalLambdaContext(function_name=function))


# ---- keys --------------------------------------------------------------------------------


def cmd_keys(args: argparse.Namespace) -> int:
    from botocore.exceptions import EndpointConnectionError

    from cirrus_common import settings as cfg

    local = getattr(args, "local", False)
    if local:
        from cirrus_local.stack import FAKE_AWS_ENV, STATE_FILE

        if not STATE_FILE.exists():
            print("error: no local stack is running (start one with `cirrus dev`)", file=sys.stderr)
            return 2
        state = json.loads(STATE_FILE.read_text())
        os.environ.update(FAKE_AWS_ENV)
        os.environ["AWS_ENDPOINT_URL"] = state["moto_url"]
        os.environ.update(state["env"])
    table = os.environ.get(cfg.ENV_KEYS_TABLE)
    if not table:
        print(
            f"error: set {cfg.ENV_KEYS_TABLE} (the stack's KeysTable output) or use --local",
            file=sys.stderr,
        )
        return 2
    from cirrus_common.keys import KeyStore

    store = KeyStore(table)
    try:
        return _keys_action(args, store, local=local)
    except EndpointConnectionError:
        print(
            "error: the local stack is not answering (start one with `cirrus dev`)", file=sys.stderr
        )
        return 2


def _keys_action(args: argparse.Namespace, store: Any, *, local: bool) -> int:
    from cirrus_common import settings as cfg

    if args.action == "create":
        plaintext, record = store.create(args.name)
        usage_plan = os.environ.get(cfg.ENV_USAGE_PLAN_ID)
        if not usage_plan and not local:
            print(
                f"warning: {cfg.ENV_USAGE_PLAN_ID} is not set, so this key is on no usage plan "
                "and API Gateway will refuse it (403). Set it to the stack's UsagePlanId output "
                "and create the key again.",
                file=sys.stderr,
            )
        if usage_plan and not local:
            import boto3

            from cirrus_common.keys import attach_usage_plan

            # API Gateway holds the key's hash, never the key: the authorizer returns the
            # same hash as the usage identifier.
            api_key_id = attach_usage_plan(
                boto3.client("apigateway"), usage_plan, record.name, record.usage_identifier
            )
            store.set_usage_plan_key_id(record.key_id, api_key_id)
        print(f"key id: {record.key_id}\napi key (shown once, store it now): {plaintext}")
    elif args.action == "list":
        for record in store.list():
            state_text = "revoked" if record.revoked else "active"
            print(f"{record.key_id}\t{record.name}\t{record.created_at}\t{state_text}")
    else:
        if not store.revoke(args.key_id):
            print(f"error: no key with id {args.key_id}", file=sys.stderr)
            return 1
        record = store.get(args.key_id)
        if not local and record is not None and record.usage_plan_key_id:
            import boto3

            from cirrus_common.keys import disable_api_key

            # The authorizer may have cached "allow" for this key (up to its TTL); a disabled
            # API Gateway key is refused by the usage plan at once.
            disable_api_key(boto3.client("apigateway"), record.usage_plan_key_id)
        print(f"revoked {args.key_id}")
    return 0


def cmd_build_model(_: argparse.Namespace) -> int:
    from cirrus_model.demo_model import ensure_demo_model

    print(ensure_demo_model(progress=_progress))
    return 0


# ---- entry -------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cirrus", description="Cirrus: serverless LLM serving")
    sub = p.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the local stack serving the API")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--auth", action="store_true", help="require API keys (off by default)")
    dev.add_argument("--no-warm", action="store_true", help="load models on first request")
    dev.set_defaults(func=cmd_dev)

    inv = sub.add_parser("invoke", help="run an event through a function's handler")
    inv.add_argument("function", help="logical id: ApiFunction, ModelFunction, ...")
    inv.add_argument("-e", "--event", required=True, help="event file (or - for stdin)")
    inv.set_defaults(func=cmd_invoke)

    # --local is accepted before or after the action: `keys --local list`, `keys create me --local`
    local = argparse.ArgumentParser(add_help=False)
    local.add_argument(
        "--local",
        action="store_true",
        default=argparse.SUPPRESS,
        help="the running `cirrus dev` stack",
    )
    keys = sub.add_parser("keys", help="manage API keys", parents=[local])
    ksub = keys.add_subparsers(dest="action", required=True)
    create = ksub.add_parser("create", parents=[local])
    create.add_argument("name")
    ksub.add_parser("list", parents=[local])
    revoke = ksub.add_parser("revoke", parents=[local])
    revoke.add_argument("key_id")
    keys.set_defaults(func=cmd_keys)

    build = sub.add_parser("build-model", help="build the demo model (cached)")
    build.set_defaults(func=cmd_build_model)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
