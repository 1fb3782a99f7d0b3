"""Server-rendered web pages: sign up, sign in, API keys, packages."""
