"""Where sequences live in the KV cache: slots, their llama.cpp calls, the prompt cache."""
