"""Rasa's socket.io channel, fixed for python-socketio 5.10+ and locked to known origins.

Rasa 3.6.21's channel calls `sio.enter_room()` without `await` (a coroutine since
python-socketio 5.10, rasa#13027), so with `session_persistence: true` no reply ever reaches
the browser; it also switches the socket.io server's origin check off. This subclass awaits
the room join, passes an explicit origin list (never "*"), records conversations as
`web:<session_id>` so staff can see the channel, and drops re-sent duplicates so the widget
can safely resend messages after a dropped connection (`bot.channels.claims`: a re-sent
message whose server died before answering is answered by the next one, not dropped). Messages pass the shared intake
rules (`bot.channels.intake`); a malformed one is acknowledged with a JSON error instead of
silence. `session_restart` ends the conversation in Rasa (`/restart`: slots, form and any
personal details cleared), for the widget's "Start over" on a shared computer.

Each `bot_uttered` payload carries the message's `clinic` marker (who is speaking: staff
reply, staff joined/left; an alert; the question asked; `bot.channels.markers`) next to
`text`, so the widget can render each kind distinctly.
`GET /webhooks/socketio/presence?conversation_id=web:<id>&token=<Rasa API token>` says
whether a browser is connected to that conversation right now: staff replies are only sent
when one is (`bot.handoff.reachability`).

With more than one Rasa server, `SOCKETIO_REDIS_URL` (else `REDIS_URL`) gives the socket.io
server python-socketio's `AsyncRedisManager` (redis-py's asyncio client; pub/sub channel
`<CHANNEL_CACHE_PREFIX>socketio`): a message emitted to a conversation's room by any server,
e.g. a staff reply triggered through the one `RASA_URL` names, reaches the browser on
whichever server it is connected to. The presence route then also counts the browsers other
servers recorded (`bot.channels.presence`). Without it, nothing of this is used.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rasa.core.channels import socketio as rasa_socketio
from rasa.core.channels.channel import (
    InputChannel,
    OutputChannel,
    UserMessage,
    decode_bearer_token,
)
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic_cors.core import SANIC_CORS_EVALUATED
from socketio import AsyncRedisManager, AsyncServer

from bot.channels.claims import ANSWERED_TTL_SECONDS, RETRY_AFTER_SECONDS, Claim, MessageClaims
from bot.channels.intake import BadMessage, deliver, tracker_store_of
from bot.channels.limits import limit_request_size
from bot.channels.markers import marker_of
from bot.channels.presence import SharedPresence
from bot.channels.sender import PREFIXES, sender_id
from bot.channels.store import ChannelCache, channel_store
from bot.settings import get_settings, rasa_api_token

logger = logging.getLogger(__name__)

SENDER_PREFIX = PREFIXES["socketio"]
"""Prefix of every sender id from this channel: the conversation id staff see."""

PRESENCE_PATH = "/presence"
"""Route (under the channel's `/webhooks/socketio`) answering whether a browser is connected."""

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ASK_PREFIX = "utter_ask_"


def clinic_marker(message: dict[str, Any]) -> dict[str, Any] | None:
    """The widget's `clinic` marker for a bot message's metadata, or None.

    Actions set it (`dispatcher.utter_message(..., clinic={"kind": ...})`, contract 5); a
    form's question (Rasa's `utter_ask_<slot>` response, named in the metadata as
    `utter_action`) becomes `{"kind": "ask", "slot": <slot>}`, so the widget can offer the
    right keyboard without a marker in every domain response.
    """
    marker = marker_of(message)
    if marker is not None:
        return marker
    action = message.get("utter_action")
    if isinstance(action, str) and action.startswith(ASK_PREFIX) and len(action) > len(ASK_PREFIX):
        return {"kind": "ask", "slot": action[len(ASK_PREFIX) :]}
    return None


class OriginConfigError(ValueError):
    """Raised when the allowed origins would let any website talk to the bot."""


def parse_origins(value: None | str | Iterable[str]) -> list[str]:
    """Normalise origins from credentials (list or comma-separated) and refuse wildcards."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    origins = [str(item).strip().rstrip("/") for item in items if str(item).strip()]
    for origin in origins:
        if "*" in origin:
            raise OriginConfigError(
                "cors_allowed_origins must list the clinic's sites explicitly, not use '*'"
            )
        if not re.match(r"^https?://[^/\s]+$", origin):
            raise OriginConfigError(
                f"{origin!r} is not an origin (scheme://host[:port], no path)"
            )
    return origins


class SocketBlueprint(rasa_socketio.SocketBlueprint):
    """Rasa's blueprint, but the socket.io route's CORS headers come from socket.io alone.

    With `rasa run --cors ...`, Rasa's sanic-cors adds a second Access-Control-Allow-Origin
    header to engine.io's polling responses; browsers reject a doubled header, so the
    widget never connects. Setting sanic-cors's own "already evaluated" request flag
    (`SANIC_CORS_EVALUATED`) makes it skip them; the origin check stays with socket.io.
    It also limits the app's request size (`bot.channels.limits`) and remembers the app
    (`ctx.mounted_app`), whose agent's tracker store the intake rules read.
    """

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        """Attach socket.io (as Rasa does) and exempt its path from sanic-cors."""
        prefix = "/" + str(self.ctx.socketio_path).strip("/")

        async def socketio_owns_cors(request: Request) -> None:
            if request.path == prefix or request.path.startswith(prefix + "/"):
                setattr(request.ctx, SANIC_CORS_EVALUATED, "1")

        app.register_middleware(socketio_owns_cors, "request")
        limit_request_size(app)
        self.ctx.mounted_app = app
        super().register(app, options)


class SocketIOOutput(rasa_socketio.SocketIOOutput):
    """Rasa's output channel, plus our namespace and each message's `clinic` marker.

    Rasa's emits in the default namespace whatever is configured, and drops a message's
    metadata, where the `clinic` marker travels.
    """

    def __init__(
        self, sio: AsyncServer, bot_message_evt: str, namespace: str | None = None
    ) -> None:
        """Remember the namespace next to Rasa's server and event name."""
        super().__init__(sio, bot_message_evt)
        self.namespace = namespace
        self._marker: dict[str, Any] | None = None

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Send one bot message, its `clinic` marker added to every payload it makes."""
        self._marker = clinic_marker(message)
        try:
            await super().send_response(recipient_id, message)
        finally:
            self._marker = None

    async def _send_message(self, socket_id: str, response: Any) -> None:
        """Send to the conversation's room in our namespace."""
        if self._marker is not None and isinstance(response, dict):
            response = {**response, "clinic": self._marker}
        await self.sio.emit(
            self.bot_message_evt, response, room=socket_id, namespace=self.namespace
        )

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Send custom JSON as the body; Rasa passed it as emit()'s keyword arguments.

        Rasa's `{"data": ...}` convention still works: the `data` value is what is sent.
        """
        payload = json_message.get("data", json_message)
        await self._send_message(recipient_id, payload)


class SocketIOInput(rasa_socketio.SocketIOInput):
    """Socket.io input channel for the website widget; see the module docstring."""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Build from credentials.yml; origins fall back to `ALLOWED_ORIGINS`."""
        credentials = credentials or {}
        origins = parse_origins(credentials.get("cors_allowed_origins"))
        return cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            bool(credentials.get("session_persistence", True)),
            credentials.get("socketio_path", "/socket.io"),
            credentials.get("jwt_key"),
            credentials.get("jwt_method", "HS256"),
            credentials.get("metadata_key", "metadata"),
            cors_allowed_origins=origins or None,
        )

    def __init__(
        self,
        user_message_evt: str = "user_uttered",
        bot_message_evt: str = "bot_uttered",
        namespace: str | None = None,
        session_persistence: bool = True,
        socketio_path: str | None = "/socket.io",
        jwt_key: str | None = None,
        jwt_method: str | None = "HS256",
        metadata_key: str | None = "metadata",
        cors_allowed_origins: Iterable[str] | None = None,
    ) -> None:
        """Like Rasa's, plus the origins allowed to connect (default: settings)."""
        super().__init__(
            user_message_evt,
            bot_message_evt,
            namespace,
            session_persistence,
            socketio_path,
            jwt_key,
            jwt_method,
            metadata_key,
        )
        origins = parse_origins(
            cors_allowed_origins
            if cors_allowed_origins is not None
            else get_settings().allowed_origins
        )
        if not origins:
            raise OriginConfigError("at least one allowed origin is needed for the widget")
        self.cors_allowed_origins: list[str] = origins
        # in Redis with CHANNEL_CACHE_URL/REDIS_URL: a re-send reaching another server is dropped too
        self._message_ids = MessageClaims(
            ChannelCache(channel_store(), "socketio:message-ids", ANSWERED_TTL_SECONDS, "")
        )
        self.presence: SharedPresence | None = None

    def get_output_channel(self) -> OutputChannel | None:
        """Output channel for messages Rasa sends outside a user turn (e.g. reminders)."""
        if self.sio is None:
            return super().get_output_channel()
        return SocketIOOutput(self.sio, self.bot_message_evt, self.namespace)

    @staticmethod
    def sender_id_for(session_id: str) -> str:
        """Conversation id recorded for a widget session (checked against the sender rule)."""
        return sender_id("socketio", session_id)

    def _authorised(self, auth: object) -> bool:
        """Rasa's JWT check: only when a `jwt_key` is configured."""
        if not self.jwt_key:
            return True
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            return False
        return decode_bearer_token(token, self.jwt_key, self.jwt_algorithm) is not None

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        """Rasa's blueprint with an awaited room join and an origin-checking server."""
        settings = get_settings()
        manager = None
        if settings.socketio_redis_url:
            manager = AsyncRedisManager(
                settings.socketio_redis_url,
                channel=f"{settings.channel_cache_prefix}socketio",
                redis_options={"socket_connect_timeout": 1.0},
            )
            self.presence = SharedPresence(settings.socketio_redis_url, settings.channel_cache_prefix)
        sio = AsyncServer(
            async_mode="sanic",
            client_manager=manager,
            cors_allowed_origins=self.cors_allowed_origins,
            max_http_buffer_size=settings.request_max_bytes,
        )
        shared_presence = self.presence
        socketio_webhook = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio
        namespace = self.namespace

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @socketio_webhook.route(PRESENCE_PATH, methods=["GET"])
        async def presence(request: Request) -> HTTPResponse:
            """Whether a browser is in the conversation's room (Rasa API token required)."""
            token = rasa_api_token()
            supplied = str(request.args.get("token") or "")
            if not token or not hmac.compare_digest(supplied.encode(), token.encode()):
                return response.json({"ok": False, "error": "unauthorised"}, status=401)
            conversation = str(request.args.get("conversation_id") or "")
            connected = any(True for _ in sio.manager.get_participants(namespace or "/", conversation))
            if not connected and shared_presence is not None:
                connected = bool(await shared_presence.connected(conversation))
            return response.json({"conversation_id": conversation, "connected": connected})

        async def join(sid: str, session_id: str) -> str:
            """Put the socket in the conversation's room (leaving any earlier one)."""
            sender_id = self.sender_id_for(session_id)
            async with sio.session(sid, namespace=namespace) as session:
                previous = session.get("sender_id")
                session["sender_id"] = sender_id
            if previous and previous != sender_id:
                await sio.leave_room(sid, previous, namespace=namespace)
            await sio.enter_room(sid, sender_id, namespace=namespace)
            if shared_presence is not None:
                await shared_presence.joined(sid, sender_id)
            return sender_id

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: dict[str, Any], auth: object = None) -> bool:
            allowed = self._authorised(auth)
            logger.debug("socket.io client %s connect allowed=%s", sid, allowed)
            return allowed

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: str, *_: object) -> None:
            logger.debug("socket.io client %s disconnected", sid)
            if shared_presence is not None:
                await shared_presence.left(sid)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: object = None) -> None:
            requested = data.get("session_id") if isinstance(data, dict) else None
            session_id = (
                requested
                if isinstance(requested, str) and _SESSION_ID.match(requested)
                else uuid.uuid4().hex
            )
            if self.session_persistence:
                await join(sid, session_id)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)

        async def conversation_of(sid: str, data: dict[str, Any]) -> str | None:
            """The socket's conversation id, joining the one `data` names if it changed."""
            if not self.session_persistence:
                conversation = self.sender_id_for(sid)
                await sio.enter_room(sid, conversation, namespace=namespace)
                if shared_presence is not None:
                    await shared_presence.joined(sid, conversation)
                return conversation
            async with sio.session(sid, namespace=namespace) as session:
                conversation = session.get("sender_id")
            requested = data.get("session_id")
            if (
                isinstance(requested, str)
                and _SESSION_ID.match(requested)
                and conversation != self.sender_id_for(requested)
            ):
                # A client that skipped session_request, or switched sessions.
                conversation = await join(sid, requested)
            return conversation

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: object = None) -> dict[str, Any]:
            """Handle one message; the acknowledgement says what went wrong, if anything."""
            if not isinstance(data, dict):
                return {"ok": False, "error": "invalid_message", "message": "send an object with 'message'"}
            conversation = await conversation_of(sid, data)
            if not conversation:
                logger.warning("Ignored a socket.io message without a valid session_id")
                return {"ok": False, "error": "invalid_session", "message": "request a session first"}
            async with self._message_ids.for_message(conversation, data.get("message_id")) as claim:
                if claim is Claim.DUPLICATE:
                    logger.debug("Dropped a re-sent message %s", data.get("message_id"))
                    return {"ok": True, "status": "duplicate"}
                if claim is Claim.IN_PROGRESS:  # being answered, or its server died: ask again
                    return {"ok": False, "error": "in_progress", "retry_after": RETRY_AFTER_SECONDS}
                return await answer(conversation, data)

        async def answer(conversation: str, data: dict[str, Any]) -> dict[str, Any]:
            """Pass the message to Rasa; the acknowledgement follows its last reply."""
            metadata = data.get(self.metadata_key or "metadata") or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except (ValueError, RecursionError):
                    metadata = {}
            try:
                await deliver(
                    on_new_message,
                    data.get("message"),
                    SocketIOOutput(sio, self.bot_message_evt, namespace),
                    conversation,
                    self.name(),
                    metadata if isinstance(metadata, dict) else {},
                    tracker_store=tracker_store_of(getattr(socketio_webhook.ctx, "mounted_app", None)),
                )
            except BadMessage as error:
                return {"ok": False, "error": error.code, "message": error.message}
            return {"ok": True}

        @sio.on("session_restart", namespace=namespace)
        async def session_restart(sid: str, data: object = None) -> dict[str, Any]:
            """End the conversation in Rasa (`/restart`), e.g. before the next person uses the device."""
            conversation = await conversation_of(sid, data if isinstance(data, dict) else {})
            if not conversation:
                return {"ok": False, "error": "invalid_session", "message": "request a session first"}
            await on_new_message(
                UserMessage(
                    "/restart",
                    SocketIOOutput(sio, self.bot_message_evt, namespace),
                    conversation,
                    input_channel=self.name(),
                )
            )
            return {"ok": True}

        return socketio_webhook
