"""The xoda Python client and the `xoda` command line.

    from client import Dispatcher
    disp = Dispatcher("http://127.0.0.1:8000")     # token: argument, XODA_TOKEN or ~/.xoda-token
    disp.instruments(); disp.describe("hxmt_he", "spectrum")
    products = disp.get_product("hxmt_he", "spectrum", T1=..., T2=..., E1_keV=28)
    products.write("out/"); products.plot(); print(products.link)

    jobs = [disp.submit("hxmt_he", "lightcurve", time_bin=b) for b in (1, 10, 100)]
    results = gather(jobs)                           # one combined progress bar

Only the HTTP API is used: the client needs requests, numpy, astropy, jsonschema, tqdm and
matplotlib, never the server's packages.
"""
from .describe import InstrumentDescription, ParameterInfo, ProductDescription
from .dispatcher import Dispatcher
from .errors import (AuthError, JobFailed, JobTimeout, NotFound, Problem, ServerError,
                     ValidationError, XodaError)
from .jobs import Job, PollPolicy, gather
from .products import (Catalog, Fit, GoodTimes, Image, LightCurve, Product, ProductCollection,
                       Response, Spectrum, TableProduct)

__all__ = [
    "Dispatcher", "Job", "PollPolicy", "gather",
    "ProductCollection", "Product", "TableProduct", "LightCurve", "GoodTimes", "Catalog",
    "Spectrum", "Response", "Image", "Fit",
    "ProductDescription", "InstrumentDescription", "ParameterInfo",
    "XodaError", "ValidationError", "Problem", "AuthError", "NotFound", "ServerError",
    "JobFailed", "JobTimeout",
]
