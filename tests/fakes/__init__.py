"""Local fakes of the external services persona-bot talks to (real wire formats, free ports)."""
