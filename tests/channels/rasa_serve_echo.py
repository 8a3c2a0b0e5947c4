"""Run Rasa's own `serve_application`, the function behind `rasa run`, with an echo agent.

`rasa run` refuses to start without a trained model, and the channel tests must not train
one; everything else it does is `rasa.core.run.serve_application`: read credentials.yml
(expanding `${VAR}`), build every input channel with `from_credentials`, mount them with
`configure_app`, and serve with Sanic's `app.run` (uvloop, signal handling). This script runs
exactly that, then swaps the model-less agent for `EchoAgent` once the server has started.

Usage: `python -m tests.channels.rasa_serve_echo <credentials.yml> <port>`
"""

from __future__ import annotations

import asyncio
import sys

from rasa.core.run import serve_application
from sanic import Sanic

from tests.channels.harness import EchoAgent


async def use_echo_agent(app: Sanic, _: asyncio.AbstractEventLoop) -> None:
    """Answer with the echo agent instead of a trained model.

    The model-less agent's tracker store stays attached: Rasa's shutdown closes it.
    """
    echo = EchoAgent()
    echo.tracker_store = app.ctx.agent.tracker_store  # type: ignore[attr-defined]
    app.ctx.agent = echo


def main(argv: list[str]) -> None:
    """Serve the channels of `argv[1]` on 127.0.0.1:`argv[2]` until terminated."""
    serve_application(
        credentials=argv[1],
        port=int(argv[2]),
        interface="127.0.0.1",
        enable_api=False,
        server_listeners=[(use_echo_agent, "after_server_start")],
    )


if __name__ == "__main__":
    main(sys.argv)
