"""Offline evaluation of the mesh: data sets, retrieval metrics (ir-measures), answer,
citation and LLM-judge scores, and reports (``ragmesh eval``)."""
