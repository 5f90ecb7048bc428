"""Import of the authors' released AttentiveNAS / AlphaNet supernet checkpoints (``anas-zoo import-official``).

One step per module: :mod:`~anas_zoo.official.reader` reads the ``.pth.tar`` file without running pickled
code; :mod:`~anas_zoo.official.keymap` translates between the official key layout and our
:class:`~anas_zoo.supernet.SuperNet`; :mod:`~anas_zoo.official.importer` builds on both to extract the paper's
A-models, recalibrate their BatchNorm statistics and write them into the local weight store.
"""
