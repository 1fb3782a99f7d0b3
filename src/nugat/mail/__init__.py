"""Outgoing mail: messages rendered from templates (``render``), sent over SMTP (``smtp``) from the
persistent outbox of ``services.mail``."""
