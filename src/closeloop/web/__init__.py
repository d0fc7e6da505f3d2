"""The web workspace: server-rendered pages (Jinja2), signed-in with a session cookie and CSRF tokens."""
