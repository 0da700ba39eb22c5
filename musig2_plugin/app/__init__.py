"""The application layer: the co-signing service a wallet runs (request lifecycle, review).

It sits between the Electrum edge (``plugin``, ``commands``, ``qt``) and the core layers
(coordinator, wallet bridge); the edge calls it and it calls the layers below.
"""
