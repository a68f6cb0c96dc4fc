"""The policy engine: pure decisions on account linking and value transfer (docs/POLICY.md).

Framework-free and I/O-free: facts in (:mod:`.facts`), a :class:`~.decision.Decision` out
(:mod:`.engine`), over a :class:`~.snapshot.TrustSnapshot` of anchors and anchor sets whose
policies :mod:`.anchor_set_policy` parses.
"""
