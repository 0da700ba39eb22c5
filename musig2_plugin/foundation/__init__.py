"""Foundations: what every layer may import and that imports no other layer.

``constants`` (protocol constants and bounds), ``config`` (the node's tunables) and ``events``
(the keyword-argument event emitter). Kept apart so that the layer order below them stays a
simple rule: foundation <- crypto <- records <- dht/transport <- session <- coordinator <- app.
"""
