"""The generative kind: causal LMs on prompt/response data and conversations (full, LoRA, TRL)."""
