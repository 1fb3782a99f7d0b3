"""The feed's documents apart from HTTP: the V3 documents (service index, registration, flat container)
built from package rows, and where each is stored (``layout``).

Pure: imports only ``nugat.versions``, ``nugat.clock`` and the standard library
(``tests/unit/test_feed_pure.py`` holds it to that).
"""

BASE = "@@NUGAT_BASE@@"
"""Stands for the feed's absolute base URL in stored documents; replaced when a document is served."""
