"""Chat-model backends: ``transformers`` (default: the embedded SmolLM2-135M-Instruct),
``llamacpp``, ``openai`` (any OpenAI-compatible server) and ``template`` (no model).

Each backend module is imported only when its backend is asked for (see
:mod:`llmrec.registry`), so using the ``openai`` or ``llamacpp`` backend never loads ``transformers``.
"""
