"""Measurements that do not ship: the pipeline runs them only when the config asks.

* :mod:`.teacher_ablation`: ``teacher_no_minilm``, the teacher without MiniLM vectors
  (``teacher_ablation = true``), to measure what the pretrained vectors add;
* :mod:`.feed_vectors`: ``student_feed_vectors``, a student that also reads a P-dim int8
  MiniLM projection per article from the feed (``student.feed_vector_variant = P``).
"""
