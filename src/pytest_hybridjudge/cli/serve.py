"""`hybridjudge review serve`: the review page in a browser, on this machine by default."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .common import CommandError, add_root_option, say

if TYPE_CHECKING:
    from .common import Project

DEFAULT_PORT = 8765


def add_serve_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register `review serve`."""
    serve = commands.add_parser(
        "serve",
        help="Resolve escalations in a browser (needs the `web` extra)",
        description="Serve the review page on 127.0.0.1 and print the one link that opens it "
        "(it carries a one-time token). Decisions go to the same resolutions file as "
        "`hybridjudge review resolve`.",
    )
    add_root_option(serve, default=argparse.SUPPRESS)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port (default: 8765)")
    serve.add_argument("--host", default="127.0.0.1", help="Address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="Allow a --host other than this machine (anyone who can reach it and has the "
        "link can review)",
    )


def serve(project: Project, args: argparse.Namespace) -> int:
    """Check the address, print the link, serve until interrupted."""
    try:
        import uvicorn

        from ..web.app import create_app
        from ..web.records import Records
        from ..web.security import Guard, is_loopback
    except ImportError as exc:
        raise CommandError(
            f"the review page needs the `web` extra ({exc.name} is missing): "
            "pip install 'pytest-hybridjudge[web]'"
        ) from None
    if not is_loopback(args.host):
        if not args.allow_remote:
            raise CommandError(
                f"--host {args.host} would expose the review page (model outputs, gold data, "
                "the resolutions file) beyond this machine; pass --allow-remote as well if you "
                "mean it, or leave --host out to serve on 127.0.0.1"
            )
        say(
            f"warning: serving on {args.host}:{args.port}: anyone who can reach this address "
            "and has the link below can read the items and record decisions",
            file=sys.stderr,
        )
    if not 0 < args.port < 65536:
        raise CommandError(f"--port {args.port}: give a port from 1 to 65535")
    guard = Guard(args.host, args.port)
    records = Records(project.root, project.config)
    items = records.items()  # read the manifests once now, so the first page paints fast
    app = create_app(records, guard)
    say(f"{len(items)} review items in {project.shown(records.store.folder)}")
    say(f"review page: {guard.url()}")
    say("open it once in your browser (the link signs that browser in); Ctrl+C stops the server")
    sys.stdout.flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", server_header=False)
    return 0
