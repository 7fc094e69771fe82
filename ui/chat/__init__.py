"""The Chats page: the conversations in the sidebar and the one open, with the model bar above it. ``page.py``
decides; ``chat_view.py`` and ``conversations_view.py`` lay it out; a message, the model bar and the conversation
settings dialog have a module each."""
