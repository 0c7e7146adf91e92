from .errors import install

install()
