"""The staff console: a web app where clinic staff read conversations and work the queue.

Starlette (ASGI) with Jinja2 templates, served by uvicorn on CONSOLE_HOST:CONSOLE_PORT
(127.0.0.1:8090). Start it with `python -m bot.console serve` (`make run` does), and
create the first admin with `python -m bot.console create-user --role admin ...`.
"""
