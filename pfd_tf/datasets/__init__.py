"""Dataset makers: what writes the data `pfd_tf.data` reads.

The synthetic worlds (`pfd-data --scenario`, :mod:`pfd_tf.datasets.scenarios`), MovieLens-1M
(:mod:`pfd_tf.datasets.movielens`) and the TFDS builder, over one shared writer
(:mod:`pfd_tf.datasets.writer`: CSV per day, `config.yaml`), the shared draws
(:mod:`pfd_tf.datasets.sampling`) and the written config's training sections
(:mod:`pfd_tf.datasets.train_config`).  Each world is a parameters module (`<world>_world.py`, a frozen
dataclass), a generator (`<world>.py`: its generative story and `generate_<world>`) and, where it
is long, a config writer (`<world>_config.py`).  Makers may import `pfd_tf.data` (its errors);
`pfd_tf.data` never imports them.
"""
