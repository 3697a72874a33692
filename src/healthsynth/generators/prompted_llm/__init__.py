"""Prompted generation with any OpenAI-compatible LLM: CLLM, class-balanced and zero-shot prompts.

See :class:`PromptedLLM`.
"""

from healthsynth.generators.prompted_llm._generator import DEFAULT_AUDIT_LOG, PromptedLLM

__all__ = ["DEFAULT_AUDIT_LOG", "PromptedLLM"]
