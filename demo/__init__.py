"""The demo data set (``demo.seed.seed_demo``) and ``manage.py seed_demo``.

A tool beside the source apps, like the provider sandbox: no product app imports it.
This package is a Django app (for its management command), so importing it must not
touch models; the seeding code lives in ``demo.seed``.
"""
