"""Provenance written while a cached product is served, byte for byte after the new header."""
import io
import tarfile
import warnings

import numpy as np
from astropy.io import fits

from dataserver import ProductStore
from dispatcher.provenance import ServedFile, provenance_cards, write_archive

OUTPUT = {"name": "image.fits", "step": "test.image", "version": 3,
          "chain": [{"step": "test.events", "version": 1, "invocations": 2},
                    {"step": "test.image", "version": 3, "invocations": 1}]}
LINK = "https://xoda.example.org/q/inst/image?" + "&".join(f"p{i}={i}" for i in range(30))


def _stored(tmp_path, checksum: bool):
    store = ProductStore(tmp_path / "cache", 10**8)
    image = np.arange(600, dtype=">f4").reshape(20, 30)
    table = fits.BinTableHDU.from_columns([fits.Column(name="X", format="D",
                                                       array=np.linspace(0, 1, 1000))], name="T")
    staged = store.staging_path("k" * 64)
    fits.HDUList([fits.PrimaryHDU(image), table]).writeto(staged, checksum=checksum)
    return store, store.put_file("k" * 64, staged, {"step": "test.image", "version": 3})


def test_served_file_has_the_cards_and_the_original_data(tmp_path):
    store, product = _stored(tmp_path, checksum=True)
    cards, history = provenance_cards("j" * 64, "inst", "image", OUTPUT, LINK)
    served = ServedFile.open(product, cards, history)
    data = b"".join(served.chunks())
    assert len(data) == served.size and len(data) % 2880 == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a wrong checksum would warn
        with fits.open(io.BytesIO(data), checksum=True) as hdul:
            header = hdul[0].header
            assert header["XODALINK"] == LINK and header["XODAJOB"] == "j" * 64
            assert header["XODAINST"] == "inst" and header["XODASVER"] == "3"
            assert list(header["HISTORY"]) == ["xoda step test.events v1 (2 invocations)",
                                               "xoda step test.image v3 (1 invocation)"]
            assert np.array_equal(hdul[0].data, np.arange(600).reshape(20, 30))
            assert np.array_equal(hdul["T"].data["X"], np.linspace(0, 1, 1000))
    # The cached product itself is untouched.
    with fits.open(product.path) as original:
        assert "XODAJOB" not in original[0].header
    store.close()


def test_archive_members_are_the_served_files(tmp_path):
    store, product = _stored(tmp_path, checksum=False)
    served = ServedFile.open(product, *provenance_cards("j" * 64, "inst", "image", OUTPUT, LINK))
    handle = write_archive(tmp_path / "tmp", "folder", [("image.fits", served)],
                           {"README.txt": "hello\n"}, mtime=1.7e9)
    with tarfile.open(fileobj=handle) as tar:
        assert tar.getnames() == ["folder/README.txt", "folder/image.fits"]
        assert tar.extractfile("folder/image.fits").read() == b"".join(served.chunks())
        assert tar.getmember("folder/image.fits").mtime == 1.7e9
    assert not list((tmp_path / "tmp").iterdir())       # the temporary file is unlinked
    store.close()
