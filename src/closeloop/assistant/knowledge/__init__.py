"""The local knowledge base (AST-1): collections with access rules, documents parsed and chunked,
full-text (jieba-segmented) and vector indexes, and hybrid retrieval fused by reciprocal rank."""
