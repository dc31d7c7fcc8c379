"""``synthqa review OUT``: review the pairs in the browser; decisions go to ``OUT/curation.jsonl`` at once."""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser

from ._options import add_out, nonneg_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "review",
        help="review pairs in the browser: accept, reject, edit (saved at once to OUT/curation.jsonl)",
        description="Serve the report with review controls on 127.0.0.1 (a random port, and a random token in the "
        "URL; requests without it are refused). Every decision is saved at once in OUT/curation.jsonl; apply them "
        "with `synthqa curate OUT`.",
    )
    add_out(p, hub=False)
    p.add_argument("--port", type=nonneg_int, default=0, help="port on 127.0.0.1 (default: a free random one)")
    p.add_argument("--no-browser", action="store_true", help="print the URL only; do not open a browser")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..curate import CURATION_FILE, read_decisions
    from ..review import Review, ReviewServer

    review = Review(args.out)
    server = ReviewServer(review, port=args.port)
    print(f"reviewing {len(review.pairs)} pairs of {args.out} ({review.flagged} flagged) at\n  {server.url}\n"
          f"every decision is saved at once in {args.out / CURATION_FILE}; Ctrl-C stops the server", flush=True)
    if not args.no_browser and _graphical():
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) is how a review ends
        pass
    finally:
        server.server_close()
    decided = len(read_decisions(args.out).latest)
    print(f"stopped; {decided} pair(s) decided in {args.out / CURATION_FILE}. Apply them with: "
          f"synthqa curate {args.out}", file=sys.stderr)
    return 0


def _graphical() -> bool:
    """A browser can open here: macOS, Windows, or a display. Elsewhere `webbrowser` would start a text
    browser in this very terminal and hide the URL, so the URL is only printed."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
