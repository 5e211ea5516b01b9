"""edgerec.trainer: the server-side half (data preparation, teacher, student, export).

Installed with the ``[trainer]`` extra (TensorFlow). It imports the SDK's feature hashing
(:func:`edgerec.featurize`), never a copy of it, so training and serving cannot drift.
This package is importable without TensorFlow; modules that need it import it themselves.
"""
