"""The ASGI entry point the server processes import (settings come from NUGAT_* variables)."""

from nugat.app import create_app

app = create_app()
