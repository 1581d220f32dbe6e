#!/usr/bin/env python3
"""A real SMTP server for Klaxon's email tests (aiosmtpd).

    smtp_server.py --dir DIR [--port N] [--tls none|starttls|implicit]
                   [--cert PEM --key PEM] [--auth USER:PASSWORD]

Listens on 127.0.0.1 (port 0 = any free port) and prints `PORT <n>` once it
listens. Every accepted message is stored in DIR as `<ns>-<pid>.eml` (the raw
RFC 5322 bytes as received) next to `<same>.json`: envelope sender and
recipients, the EHLO name, the TLS version of the session (null without TLS),
whether STARTTLS was used, and the authenticated login.

`--tls starttls` offers STARTTLS and refuses MAIL before it (require_starttls);
`--tls implicit` speaks TLS from the first byte (SMTPS).

Failures on demand: while DIR/reply-rcpt (or DIR/reply-data) exists, its
first line is the reply to every RCPT TO (or DATA), e.g. `451 4.3.0 Try again
later` or `550 5.1.1 No such user`; remove the file to accept again.

The server exits when its standard input closes (the test went away).
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import threading
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, directory):
        self.dir = directory

    def forced_reply(self, stage):
        try:
            with open(os.path.join(self.dir, f"reply-{stage}"), encoding="utf-8") as f:
                line = f.readline().strip()
        except FileNotFoundError:
            return None
        return line or None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.forced_reply("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.forced_reply("data")
        if reply:
            return reply
        ssl_object = server.transport.get_extra_info("ssl_object")
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "ehlo": session.host_name,
            "tls": ssl_object.version() if ssl_object is not None else None,
            "starttls": session.ssl is not None,
            "login": login.decode() if login else None,
        }
        name = f"{time.time_ns()}-{os.getpid()}"
        raw = envelope.original_content or envelope.content
        for ext, data in ((".json", json.dumps(meta).encode()), (".eml", raw)):
            tmp = os.path.join(self.dir, f".{name}{ext}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(self.dir, name + ext))
        return "250 2.0.0 Message accepted"


def main():
    # Quiet: aiosmtpd logs its own deprecations on every AUTH and a traceback for
    # every failed TLS handshake (which some tests cause on purpose).
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth", help="USER:PASSWORD; AUTH is then required")
    args = p.parse_args()

    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    users = {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        users[user.encode()] = password.encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and users.get(auth_data.login) == auth_data.password
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    handler = Handler(args.dir)

    def factory():
        kwargs = {"hostname": "smtp.test", "ident": "Klaxon test SMTP"}
        if args.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if users:
            kwargs.update(
                authenticator=authenticator,
                auth_required=True,
                # Over implicit TLS the session is encrypted, but aiosmtpd only
                # knows about STARTTLS.
                auth_require_tls=args.tls == "starttls",
            )
        return SMTP(handler, **kwargs)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            factory,
            host="127.0.0.1",
            port=args.port,
            ssl=context if args.tls == "implicit" else None,
        )
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)

    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.run_forever()


if __name__ == "__main__":
    main()
