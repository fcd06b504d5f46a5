"""Staff alerts in Slack through the Slack provider's webhook hook, when config/vendor.yaml
says ``staff_chat: {kind: slack}`` (the HTTP sink stays the default, for other chat tools).

The hook's ``slack_sdk.WebhookClient`` retries only connection errors unless it is handed
retry handlers: these add server errors (500, 503) and rate limits (429, waiting as long as
``Retry-After`` says). The handlers share one attempt counter, so each may retry up to
``retries`` times in all, not each. A response still not 200 after them fails the send
(the hook raises), and Airflow retries the task; the ledger keeps it to once per key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from release_pipeline.vendor import StaffChat


def retry_handlers(chat: StaffChat) -> list:
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    return [
        ConnectionErrorRetryHandler(max_retry_count=chat.retries),
        ServerErrorRetryHandler(max_retry_count=chat.retries),
        RateLimitErrorRetryHandler(max_retry_count=chat.retries),
    ]


def slack_text(message: Mapping[str, Any]) -> str:
    """The alert as Slack shows it: the subject in bold over the Markdown body."""
    return f"*{message['subject']}*\n{message.get('markdown') or ''}".strip()


def post_to_slack(conn_id: str, message: Mapping[str, Any], chat: StaffChat) -> dict[str, Any]:
    """Post ``message`` to the Slack webhook of connection ``conn_id``; raises unless Slack
    answered 200 (after the retries)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    hook = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=30, retry_handlers=retry_handlers(chat))
    response = hook.send(text=slack_text(message))
    return {"status": response.status_code, "conn_id": conn_id, "channel": "slack"}
