"""Offline model building: synthetic feeds, training, evaluation, ONNX export and publishing.

Features come from ``cadence.features``, the module the score function uses; nothing here redefines them.
"""
