"""Other computers' engines: any OpenAI-compatible server the person adds (llama.cpp's ``llama-server``, vLLM,
Ollama, LM Studio, another Hearth), its models used as Hearth uses its own."""
