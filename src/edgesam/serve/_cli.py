"""The ``edgesam serve`` sub-command (wired into ``edgesam.cli`` by ``register``).

Building the parser imports neither FastAPI nor uvicorn; the handler does, and
reports a missing extra with the command that installs it.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path

from edgesam._config import ENV_API_KEY, api_key_from_env
from edgesam.errors import InvalidInputError

__all__ = ["handle_serve", "register"]

logger = logging.getLogger("edgesam.serve")

_DESCRIPTION = """\
Serve EdgeSAM over HTTP: an API (/v1/embed, /v1/decode, /v1/everything; see /docs)
and a page at / where clicks are decoded in the browser with onnxruntime-web.
Needs the serve extra: pip install "edgesam[serve]"
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` sub-command to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "serve",
        help="HTTP API and browser page (needs edgesam[serve])",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--cache-mb",
        type=float,
        default=512,
        help="embedding cache size in MiB, 4 MiB per image (default 512)",
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=32, help="largest upload in MiB (default 32)"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        help="largest image in pixels (default: Pillow's limit, about 89 megapixels)",
    )
    parser.add_argument(
        "--api-key",
        help=f"require 'Authorization: Bearer KEY' on /v1 (default: ${ENV_API_KEY}, or none)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow the API to be called from pages of ORIGIN (repeatable; default: none)",
    )
    parser.add_argument(
        "--web-runtime",
        type=Path,
        metavar="DIR",
        help="serve onnxruntime-web from this local dist folder instead of the jsDelivr CDN",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="threads running the model (default 2)"
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=32,
        help="requests that may wait for a worker before 503 (default 32)",
    )
    from edgesam.cli import _add_model_options

    model = _add_model_options(parser)
    model.add_argument(
        "--checkpoint", type=Path, help="the matching .pth, for mask_input with local files"
    )
    parser.set_defaults(func=handle_serve)


def _is_public(host: str) -> bool:
    if host in ("localhost", ""):
        return host == ""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: assume it resolves beyond this machine


def handle_serve(args: argparse.Namespace) -> int:
    """Load the model and run the server until interrupted; returns the exit code."""
    from edgesam.serve import require_extra

    require_extra()
    import uvicorn

    from edgesam.cli import _load_model, check_model_files
    from edgesam.serve._app import create_app

    check_model_files(args)
    if args.checkpoint is not None and args.encoder is None:
        raise InvalidInputError(
            "--checkpoint goes with --encoder/--decoder; official models fetch their own"
        )
    api_key = args.api_key if args.api_key is not None else api_key_from_env()
    model = _load_model(args, checkpoint=args.checkpoint)
    app = create_app(
        model,
        cache_mb=args.cache_mb,
        max_body_mb=args.max_body_mb,
        max_pixels=args.max_pixels,
        api_key=api_key,
        cors_origins=args.cors_origin,
        web_runtime=args.web_runtime,
        workers=args.workers,
        queue_size=args.queue,
    )
    if _is_public(args.host):
        print(
            f"edgesam serve: warning: listening on {args.host}, reachable from other machines"
            + ("" if api_key else "; anyone who can reach it can use it (set --api-key)"),
            file=sys.stderr,
        )
    # The request log line is the app's own (edgesam.serve at INFO); uvicorn's access
    # log would repeat it.
    logging.getLogger("edgesam.serve").setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger("edgesam.serve").addHandler(handler)
    logging.getLogger("edgesam.serve").propagate = False
    print(
        f"edgesam serve: {model.name} on {', '.join(model.providers['encoder'])}; "
        f"open http://{args.host}:{args.port}/",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0
