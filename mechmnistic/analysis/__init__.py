"""Analyses: pure functions from models and data to arrays and dataclasses.

One method per module. Heavy results over the dataset are cached on disk
through ``mechmnistic.cache``.
"""
