"""Framework integrations: an agent framework's tools behind Charter's authority check.

`governed` is the core they share; `openai_agents` (the OpenAI Agents SDK) and
`langgraph` (LangGraph with LangChain tools) import their framework, so import them only
where it is installed (`pip install 'charter[openai-agents]'` or `'charter[langgraph]'`).
"""
