"""Conversations as Markdown, for reading anywhere: made from Hearth's history file (``app.history.exchange``), so
both exports say the same. The messages are Markdown already (models write it), so they are kept as written."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def conversations_markdown(document: dict[str, Any]) -> str:
    parts = []
    for conversation in document.get("conversations", []):
        when = datetime.fromisoformat(conversation["created_at"])
        lines = [f"# {conversation['title']}", "",
                 f"*{when:%d %B %Y}" + (f" · {conversation['model_name']}" if conversation.get("model_name") else "")
                 + "*", ""]
        system = conversation.get("system_prompt") or ""
        if system.strip():
            lines += [f"> System prompt: {' '.join(system.split())}", ""]
        for message in conversation.get("messages", []):
            who = "You" if message["role"] == "user" else message.get("model_name") or message["role"].capitalize()
            lines += [f"## {who}", "", message["content"].rstrip(), ""]
        parts.append("\n".join(lines).rstrip() + "\n")
    return "\n\n".join(parts)
