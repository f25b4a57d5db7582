"""The satellite domain (multispectral GeoTIFF and RGB aerial images with captions), being built for issue 14.

So far its raster reader (:mod:`.readers`) and the ``rsicd`` caption layout (:mod:`.layouts`) exist; the domain is
not registered yet, so no recipe can name it.
"""
