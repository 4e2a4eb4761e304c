"""The review page (`hybridjudge review serve`): reviewers resolve escalations in a browser.

Needs the `web` extra (`pip install 'pytest-hybridjudge[web]'`): Starlette, uvicorn, matplotlib.
"""
