"""A small MCP server for the gateway's tests, run over stdio: `echo` answers with the
server's process id, `crash` ends the process without answering."""

from __future__ import annotations

import os
from typing import Any

from mcp.server.mcpserver import MCPServer

server = MCPServer("flaky", log_level="WARNING")


@server.tool()
def echo(text: str) -> dict[str, Any]:
    """Say `text` back, with this server's process id."""
    return {"echo": text, "pid": os.getpid()}


@server.tool()
def crash() -> str:
    """End the server's process at once."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
