"""Hearth as a local API server (``hearth serve``): the library's models to other programs, in the OpenAI API's
shapes, on one engine worker. Starlette routes the requests and uvicorn serves them (``serving.py`` says why)."""
