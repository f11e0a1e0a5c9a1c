"""Distillation: the terms a student learns from (`terms`), how several teachers combine (`ensemble`),
and which losses may move which variables (`routing`)."""
