"""The one exception family users see: the CLI prints its message on one line and exits with code 2."""


class DiffnasError(Exception):
    """Base class of every error caused by user input (config, genotype, data, checkpoint)."""


class ConfigError(DiffnasError):
    """A config value, key or file is invalid."""


class GenotypeError(DiffnasError):
    """A genotype string, file or name is malformed or does not fit the search space."""


class DataError(DiffnasError):
    """A dataset is missing, truncated, corrupt or of the wrong shape."""


class CheckpointError(DiffnasError):
    """A checkpoint is missing, corrupt, unsafe, or from another configuration or version."""


class NumericalError(DiffnasError):
    """A loss, gradient or architecture parameter became NaN or infinite."""
