"""The trainer's inputs: click logs in, training examples out. No TensorFlow here.

* :mod:`.mind`: the MIND tsv files (news, behaviors, the sampled dev file), streamed, with
  a :class:`~.mind.ReadReport` of what was skipped and why;
* :mod:`.interactions`: the generic layout (``articles.csv`` + ``interactions.csv``, or
  Parquet), time-ordered, leak-free time windows;
* :mod:`.synthetic`: a seeded SYNTHETIC generator writing either layout (demo, tests);
* :mod:`.loading`: :func:`~.loading.load`, either layout into one :class:`~.loading.Data`
  record (articles, a re-openable training log, the evaluation impressions);
* :mod:`.training_examples`: the article table and the streamed training examples (index
  arrays) both the teacher and the student train on;
* :mod:`.embeddings`: MiniLM sentence vectors of articles, cached on disk (``[embed]``).
"""
