"""Interoperability with other ActBERT implementations: PaddleVideo's weights, config and feature LMDB."""
