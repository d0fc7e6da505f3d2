"""The compliance checker (AST-2): rule packs as data, an Aho-Corasick matcher, scans and reviews."""
