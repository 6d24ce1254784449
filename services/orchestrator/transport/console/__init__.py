"""The web console: static assets (plain HTML, CSS and JavaScript modules, no build step)
served at ``/ui/`` by the orchestrator's HTTP app, talking to the same HTTP API as everyone
else (``/v1/chat/completions``, ``/v1/collections`` ...). docs/console.md shows each page."""
