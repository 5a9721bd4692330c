"""The "which persona fits this deal?" matcher, split into readers, vocabulary and scoring.

``persona_store.matcher`` re-exports the public API; import from there.
"""
