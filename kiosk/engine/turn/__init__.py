"""The end-of-turn stage: is the visitor's pause the end of the question, or a hesitation?

``model.py`` is the stage interface and its registry (``smart_turn``; ``none`` means no model: the
silence rule of ``[vad]``), ``smart_turn.py`` runs Smart Turn v3 (features in ``features.py``), and
``policy.py`` decides when to ask, how long to wait, and when to merge a fragment with its continuation.
"""
