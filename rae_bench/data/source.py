"""Where the datasets live: :class:`DataSource` (data root, cache, flags)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Environment variable that, when set and non-empty, overrides the configured data root.
DATA_ENV_VAR = "RAE_BENCH_DATA"


@dataclass(frozen=True)
class DataSource:
    """The data root (torchvision layout), a writable cache folder and two flags.

    ``root`` is read only: nothing is ever written below it.  Extracted and
    preprocessed files go to ``cache``.  ``download`` lets torchvision fetch
    missing files (into ``cache``) when online; ``verify`` checks md5/sha256
    checksums of the raw files (switch it off only for hand-made fixtures).
    """

    root: Path
    cache: Path
    download: bool = False
    verify: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "cache", Path(self.cache))
        object.__setattr__(self, "download", bool(self.download))
        object.__setattr__(self, "verify", bool(self.verify))

    @classmethod
    def from_config(cls, data_root: str, cache: str, download: bool = False, verify: bool = True) -> "DataSource":
        """Build from config values; ``$RAE_BENCH_DATA`` (when non-empty) overrides ``data_root``."""
        env = os.environ.get(DATA_ENV_VAR, "")
        root = env if env.strip() else data_root
        return cls(
            root=Path(os.path.expanduser(str(root))),
            cache=Path(os.path.expanduser(str(cache))),
            download=download,
            verify=verify,
        )
