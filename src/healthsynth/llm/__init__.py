"""Language-model backends: any OpenAI-compatible chat endpoint, with a PHI gate and accounting.

:class:`ChatClient` wraps the official ``openai`` SDK (OpenAI, Azure, vLLM, Ollama, llama.cpp
server, TGI — anything that speaks chat completions at a base URL). Real rows, and data derived
from them, go to an endpoint off this machine only with ``allow_remote_phi``; no redirect is
followed, and an endpoint URL carrying credentials is refused (``docs/security.md``). Every
request is written to a JSONL audit log before it is sent (:class:`AuditLog`); tokens and money
are counted from the replies' usage, and a budget stops the client before a request could
exceed it. :mod:`healthsynth.llm.testing` serves a scripted chat-completions endpoint on a
loopback address for tests and benchmarks.

The local causal LMs trained here live with their generators (``tabular-lm``, ``timeline-lm``).
"""

from healthsynth.llm._audit import AuditLog, read_audit_log
from healthsynth.llm._client import RESPONSE_FORMATS, ChatClient, ChatReply, ChatRequest, Usage
from healthsynth.llm._gate import is_local_endpoint
from healthsynth.llm._prices import Price, load_prices

__all__ = [
    "RESPONSE_FORMATS",
    "AuditLog",
    "ChatClient",
    "ChatReply",
    "ChatRequest",
    "Price",
    "Usage",
    "is_local_endpoint",
    "load_prices",
    "read_audit_log",
]
