"""persona-bot core: the command grammar, handlers, rendering model, permissions, settings,
command line and the one aiohttp web app. Platform-neutral: nothing here imports a chat SDK."""
