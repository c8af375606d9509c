"""xoda's data server: versioned steps, a content-addressed product cache, and an engine
that runs step graphs per data unit on local processes, dask or docker."""
from .engine import Engine, RunResult
from .keys import UnhashableValue, canonical_json, content_key, step_key
from .plugin import (Identity, Instrument, Plan, PlanOutput, ProductType, QueryError, Unit,
                     load_instruments)
from .settings import SETTINGS, Settings
from .steps import Node, Output, Step, StepContext, StepParameterError, step
from .store import Product, ProductStore

__version__ = "0.1.0"

__all__ = [
    "Engine", "RunResult", "UnhashableValue", "canonical_json", "content_key", "step_key",
    "Identity", "Instrument", "Plan", "PlanOutput", "ProductType", "QueryError", "Unit",
    "load_instruments", "SETTINGS", "Settings", "Node", "Output", "Step", "StepContext",
    "StepParameterError", "step", "Product", "ProductStore", "__version__",
]
