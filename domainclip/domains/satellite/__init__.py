"""The satellite domain (multispectral GeoTIFF and RGB aerial images with captions), being built for issue 14.

So far only its raster reader (:mod:`.readers`) exists; the domain is not registered yet, so no recipe can name it.
"""
