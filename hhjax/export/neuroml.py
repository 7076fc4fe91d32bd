"""placeholder"""


def to_neuroml(params, directory, *, force=False):
    raise NotImplementedError
