"""``s3d-fast serve``: the page and the live stream from one process.

Binds 127.0.0.1 by default. Any other host needs a token (``--token``, or one generated
and printed once), checked on every request and so on the peer connection's offer, and
HTTPS (``--tls-cert``/``--tls-key``, or a self-signed certificate it makes and says so).
"""

from __future__ import annotations

import math
import os
import sys

from ..render.cli import ADAPT_STEPS
from ..render.limits import check_adapt_steps
from .errors import ServeError

EXTRA = 'pip install "s3d-fast[serve]"'


def add_arguments(parser) -> None:
    # Nothing here imports the web stack or torch: `s3d-fast --help` imports this module.
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--checkpoint", metavar="CKPT", help="trained model (default: the bundled demo checkpoint)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto: cuda when available)")
    parser.add_argument("--max-sessions", type=int, default=4, metavar="N", help="viewers at once (default 4)")
    parser.add_argument(
        "--token", help="access token every request must carry (required off 127.0.0.1; default: one generated)"
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="HTTPS certificate (with --tls-key)")
    parser.add_argument("--tls-key", metavar="PEM", help="HTTPS private key (with --tls-cert)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MB (default 20)")
    parser.add_argument(
        "--max-image-pixels", type=int, default=4096 * 4096, help="largest portrait in pixels (default 4096^2)"
    )
    parser.add_argument("--max-speech-seconds", type=float, default=60.0, help="longest speech in seconds (default 60)")
    parser.add_argument(
        "--adapt-steps",
        type=int,
        default=ADAPT_STEPS,
        metavar="N",
        help=f"bake-time adaptation steps of each portrait, as render's (default {ADAPT_STEPS}, about 20 s on 2 cores)",
    )
    parser.add_argument(
        "--max-portraits", type=int, default=8, help="baked portraits kept in memory, about 6 MB each (default 8)"
    )


def run(args) -> int:
    try:
        import aiortc  # noqa: F401
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ServeError(f"the web server's packages are not installed ({exc.name}): {EXTRA}") from None

    from ..render import api
    from . import security
    from .app import create_app
    from .limits import Limits

    check_adapt_steps(args.adapt_steps, "--adapt-steps")
    if not 0 <= args.port <= 65535:
        raise ServeError(f"--port must be from 0 to 65535, got {args.port}")
    if not 0 < args.max_upload_mb < math.inf:  # NaN too; Limits would name the byte count, not this flag
        raise ServeError(f"--max-upload-mb must be a positive number, got {args.max_upload_mb}")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ServeError("give --tls-cert and --tls-key together")
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not os.path.isfile(path):
            raise ServeError(f"{flag} {path}: no such file")
    limits = Limits(
        max_sessions=args.max_sessions,
        max_upload_bytes=max(1, int(args.max_upload_mb * 1024 * 1024)),
        max_image_pixels=args.max_image_pixels,
        max_speech_seconds=args.max_speech_seconds,
        max_portraits=args.max_portraits,
    ).check()
    local = security.is_loopback(args.host)
    token, told = args.token, ""
    if token is not None and len(token) < 8:
        raise ServeError("--token must be at least 8 characters")
    if not local and token is None:
        token, told = security.new_token(), " (generated; it is shown only here)"
    cert, key = args.tls_cert, args.tls_key
    if not local and cert is None:
        from .._ext.build import cache_root

        folder = os.path.join(cache_root(), "serve-tls")
        cert, key = security.self_signed_certificate(folder, args.host)
        print(f"s3d-fast serve: HTTPS with a self-signed certificate made now ({cert}); browsers will ask to trust it")

    renderer = api.Renderer(args.checkpoint, args.device)
    app = create_app(renderer, limits, token, adapt_steps=args.adapt_steps)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=cert,
        ssl_keyfile=key,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    scheme = "https" if cert else "http"

    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets)
        port = args.port
        if server.servers and server.servers[0].sockets:
            port = server.servers[0].sockets[0].getsockname()[1]
        shown = "[" + args.host + "]" if ":" in args.host else args.host
        url = f"{scheme}://{shown}:{port}/" + (f"?token={token}" if token else "")
        print(f"s3d-fast serve: open {url}{told}  ({renderer.device.type}; Ctrl-C stops)", flush=True)

    server.startup = startup
    server.run()
    sys.stdout.flush()
    return 0
