"""The HTTP face: JSON API (and, later, the pages) on FastAPI + uvicorn, inside `serve`.

The web framework stays in this package. Lookups read the snapshot DNS answers from
(``publication.lookup``); everything else calls the stages and the store as library
functions, the store in worker threads (``context.Stores``).
"""
