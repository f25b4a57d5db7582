"""The satellite domain (multispectral GeoTIFF and RGB aerial images with captions), being built for issue 14.

So far: the raster reader (:mod:`.readers`), the ``rsicd`` and ``eurosat`` layouts (:mod:`.layouts`), per-band
statistics over a split (:mod:`.statistics`) and the preprocessor that applies them (:mod:`.preprocess`, with its
recipe section in :mod:`.config`). The domain is not registered yet, so no recipe can name it.
"""
