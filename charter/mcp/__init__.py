"""Charter over the Model Context Protocol: its own verbs as tools for agents
(`charter.mcp.server`), and a gateway that governs every call to other MCP servers
(`charter.mcp.gateway`)."""
