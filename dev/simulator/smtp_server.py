"""The OEMs' mail server, played by aiosmtpd in the simulator's own asyncio loop: it stores
every message it accepts (for the mailbox page and the tests) and answers ``550`` to a
recipient a test marked as refused (``PATCH /_sim/mail``)."""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import SMTP

from simulator.state import SimulatorState


class MailHandler:
    def __init__(self, state: SimulatorState):
        self.state = state

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        if address.lower() in self.state.refused_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.state.receive_mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        return "250 Message accepted for delivery"


async def start_smtp_server(state: SimulatorState, host: str, port: int) -> asyncio.base_events.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(MailHandler(state), hostname="mail.simulator.test"), host, port)
