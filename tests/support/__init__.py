"""Helpers for nugat's end-to-end tests: the real nuget.exe, real packages and a real server process."""
